"""The CA's public face: its CRL and its certificate chain, for anyone (no login), since relying
parties outside the school must be able to check a signature and its revocation status."""

from flask import Blueprint, Response, abort

from portal.certificates import services
from portal.crypto.asn1 import pem

bp = Blueprint("certificates", __name__)


@bp.route("/ca/crl")
def crl():
    """The issuing CA's current CRL, DER (RFC 5280 §4.2.1.13: what a distribution point serves)."""
    try:
        der = services.current_crl()
    except services.CANotInitialised:
        abort(404)
    response = Response(der, mimetype="application/pkix-crl")
    response.headers["Content-Disposition"] = 'inline; filename="ca.crl"'
    # Caches may keep it for an hour; a revocation shows up at the next fetch after that.
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.route("/ca/chain")
def chain():
    """The issuing CA and root certificates, PEM, leaf-side first (RFC 8555 §9.1 media type)."""
    try:
        ders = services.chain()
    except services.CANotInitialised:
        abort(404)
    body = "".join(pem(der, "CERTIFICATE") for der in ders)
    response = Response(body, mimetype="application/pem-certificate-chain")
    response.headers["Content-Disposition"] = 'inline; filename="ca-chain.pem"'
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
