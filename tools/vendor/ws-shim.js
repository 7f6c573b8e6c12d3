// ws-shim.js - the `ws` package in a browser: the page's own WebSocket (the SDK prefers
// window.WebSocket anyway and only falls back to require('ws')).
module.exports = window.WebSocket;
