// A small HTTP service for the real-program suite (node case).
//   /who        -> pid=P state=S hups=N
//   /set/VALUE  -> sets state
// SIGHUP is counted.  JSON and a closure run per request (JIT code and heap).
"use strict";
const http = require("http");
let state = "template";
let hups = 0;
process.on("SIGHUP", () => { hups++; });
http.createServer((req, res) => {
  if (req.url.startsWith("/set/")) state = req.url.slice(5);
  const body = JSON.stringify({ squares: [1, 2, 3].map((x) => x * x) });
  res.end(`pid=${process.pid} state=${state} hups=${hups} ${body}\n`);
}).listen(Number(process.argv[2]), "127.0.0.1");
