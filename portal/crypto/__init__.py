"""Pure national-crypto library (SM2, SM3, SM4, CMS, X.509 helpers): bytes in, bytes out.

No Flask and no database here, so every function can be tested on its own.
"""
