"""The registry as a TUF repository (python-tuf Metadata API); see SPEC section 15.

``repository`` (pure: build and sign metadata), ``keys`` (root and online
signers), ``models`` (stored metadata files, key endorsements),
``services`` (sync after publish/yank/key changes, endorse, compromise,
root rotation), ``selectors`` (a metadata file by name), ``apis`` (serve it).
"""
