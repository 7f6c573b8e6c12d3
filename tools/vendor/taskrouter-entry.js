// taskrouter-entry.js - what esbuild bundles into web/vendor/twilio-taskrouter.min.js.
// twilio-taskrouter's own dist/index.window.js still require()s its dependencies (axios,
// events, lodash, loglevel, ...), so it cannot run in a page by itself: this bundles it with
// them and publishes it as window.Twilio.TaskRouter (and window.TaskRouter, the UMD name).
const TaskRouter = require('twilio-taskrouter/dist/index.window.js');

window.Twilio = window.Twilio || {};
window.Twilio.TaskRouter = TaskRouter;
window.TaskRouter = TaskRouter;
