// The Socket.IO peer of nudge's side-by-side benchmark (bench/peers.sh, docs/performance.md):
// a Socket.IO 4 server on Node with one room per topic, as an application would build
// cache-invalidation fan-out with it.
//
//   node server.js PORT [HOST]     (PORT 0: any free port) prints "socketio ready port=N"
//
// A subscriber emits "sub" with an array of topic numbers and an ack: it joins one room per
// topic and the ack answers once it has. A publisher emits "pub" (topic, data) with an ack: the
// server sends "m" (topic, data) to the topic's room and acknowledges. Options follow
// socket.io's performance-tuning page (docs/v4/performance-tuning): the default `ws` engine
// with its native add-ons bufferutil and utf-8-validate (optionalDependencies), no
// per-message deflate (the default since engine.io 4), no HTTP long-polling (clients open the
// WebSocket transport directly), and the initial HTTP request discarded to save memory per
// connection.
'use strict';

const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 0);
const host = process.argv[3] || '127.0.0.1';

const httpServer = http.createServer((req, res) => {
  res.writeHead(404);
  res.end();
});
const io = new Server(httpServer, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
});

io.engine.on('connection', (rawSocket) => {
  rawSocket.request = null;
});

io.on('connection', (socket) => {
  socket.on('sub', (topics, ack) => {
    if (!Array.isArray(topics)) return;
    socket.join(topics.map(String));
    if (typeof ack === 'function') ack(topics.length);
  });
  socket.on('pub', (topic, data, ack) => {
    io.to(String(topic)).emit('m', topic, data);
    if (typeof ack === 'function') ack();
  });
});

httpServer.listen(port, host, () => {
  console.log(`socketio ready port=${httpServer.address().port}`);
});

process.on('SIGTERM', () => process.exit(0));
