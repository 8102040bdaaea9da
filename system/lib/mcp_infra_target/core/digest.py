"""SHA-256 for the per-request path (policy digest, key fingerprint) without `hashlib`.

Importing hashlib loads OpenSSL: about 2.5 ms, a tenth of a whole wrapper request.
CPython's built-in SHA-256 gives the same digests; hashlib stays the fallback for an
interpreter built without it.
"""

try:
    from _sha2 import sha256  # CPython 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # CPython 3.9-3.11
    except ImportError:
        from hashlib import sha256

__all__ = ["sha256"]
