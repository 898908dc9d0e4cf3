"""Millrace's versioned event contracts: the public face other plant systems depend on.

Change a contract only as docs/architecture.md allows: within a major version add optional
fields, nothing else; a breaking change is a new topic ``v<major+1>``. Regenerate with
``make contracts``.
"""
