"""A static, signed plugin index (seed section 9.1): the pure logic, no storage, no CLI.

    keys.py      Ed25519 keys: generate, load, key ids, sign and verify bytes
    document.py  the index document: its shape, canonical bytes, lookups, search
    trust.py     reading an index (directory, file:// or http(s)) and trusting it: a
                 pinned key's signature, the expiry, a serial that only grows
    pack.py      an artifact: a reproducible tarball of a plugin folder, its hashes,
                 a safe unpack
    wheel.py     an entry-point plugin's wheel read as a zip (RECORD, entry point,
                 manifest); its package folder is what gets installed
    scan.py      what a plugin's code may do, read with ``ast`` (file and line each)
    resolve.py   ``requires`` resolved transitively from the index
    install.py   an install plan verified in memory (signature, hash, files, manifest,
                 scan), then written
    installed.py plugins installed side by side: ``$KSA_HOME/plugins/ID/VERSION/``
    publish.py   the publisher's side: add a plugin version, rate it, sign the index
    canary.py    A/B trial of a version: the stable share, the comparison, self-abort

The full account is docs/index.md. Errors are the ``PluginIndexError`` branch of
plugins/errors.py; every refusal is one line saying which rule refused and how to allow.
"""
