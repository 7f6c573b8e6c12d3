// get-sync-grant.js - the seed's function, as its README describes it: CORS, verifyToken, then
// a Sync access token for the caller, valid for one hour: { authorized: true, syncToken }.
// bench/run.sh serves it with twilio-run (what `twilio serverless:start` runs) beside tassa.
exports.handler = function (context, event, callback) {
  const assets = Runtime.getAssets();
  const { applyCors } = require(assets['/helper-functions/network/cors.js'].path);
  const { verifyToken } = require(assets['/helper-functions/auth/verifyToken.js'].path);
  const response = new Twilio.Response();
  if (applyCors(event, response)) return callback(null, response);
  try {
    verifyToken(event.token, event.identity, context.JWT_SECRET);
  } catch (e) {
    response.setStatusCode(401);
    response.setBody({ authorized: false, error: e.message });
    return callback(null, response);
  }
  const AccessToken = Twilio.jwt.AccessToken;
  const token = new AccessToken(context.ACCOUNT_SID, context.API_KEY, context.API_SECRET, {
    identity: event.identity,
    ttl: 3600,
  });
  token.addGrant(new AccessToken.SyncGrant({ serviceSid: context.SYNC_SERVICE_SID }));
  response.setBody({ authorized: true, syncToken: token.toJwt() });
  return callback(null, response);
};
