// cors.private.js - the seed's CORS helper, as its README describes it: adds the CORS headers
// to a Function's response and answers preflight (OPTIONS) requests.
exports.applyCors = (event, response) => {
  response.appendHeader('Access-Control-Allow-Origin', '*');
  response.appendHeader('Access-Control-Allow-Methods', 'OPTIONS, POST, GET');
  response.appendHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization');
  response.appendHeader('Content-Type', 'application/json');
  return event.request && event.request.method === 'OPTIONS';
};
