// Entry point of static/vendor/cosign-deps.js, the one ES module that carries the npm code the
// cosign client needs. scripts/vendor-assets.sh bundles it with esbuild (make deps): @noble/curves
// is ES modules spread over many files and sm-crypto is CommonJS, so neither loads in a browser
// as published. The browser and the Node tests import the same generated file.

// SM2 point arithmetic on the recommended curve: a short-Weierstrass point constructor.
export { weierstrass } from '@noble/curves/abstract/weierstrass.js';
// Modular inversion by Fermat (fixed exponent, no secret-dependent branches) for secret scalars.
export { invertCt } from '@noble/curves/abstract/modular.js';
// SM3 (and HMAC-SM3) and SM4 only: sm-crypto's package index would also pull in its SM2 and jsbn.
export { default as sm3 } from 'sm-crypto/src/sm3/index.js';
export { default as sm4 } from 'sm-crypto/src/sm4/index.js';
