// graphql-ws-shim.js - graphql-ws in the vendored bundle: the Worker's GraphQL signaling
// (`useGraphQL: true`, off by default) is not bundled; graphql alone would double the size.
// tassa's event bridge is the default EventBridge signaling.
module.exports = {
  createClient() {
    throw new Error('this twilio-taskrouter build has no GraphQL signaling (useGraphQL)');
  },
};
