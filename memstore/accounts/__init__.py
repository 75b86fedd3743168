"""Users, namespaces with members and roles, publisher signing keys, API tokens."""
