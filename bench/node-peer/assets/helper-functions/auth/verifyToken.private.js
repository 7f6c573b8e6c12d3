// verifyToken.private.js - the seed's verifyToken, as its README describes it: verifies a JWT
// with a secret and checks the identity it names; throws when the token is missing or invalid.
const jwt = require('jsonwebtoken');

exports.verifyToken = (token, identity, secret) => {
  if (!token) throw new Error('token is required');
  const claims = jwt.verify(token, secret, { algorithms: ['HS256'] });
  if ((claims.identity || claims.sub) !== identity) throw new Error('identity mismatch');
  return claims;
};
