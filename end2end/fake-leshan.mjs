// A fake of the LwM2M server's REST API (Leshan), for the end-to-end tests:
// the dispatcher sends writes, executes and reads here instead of to a real
// LwM2M server. It follows the "Downlink" contract in
// /work/shared/notes/leshan-contract.md.
//
//   node end2end/fake-leshan.mjs [port]          (default 18080)
//
// Every endpoint answers success unless a test told it otherwise:
//   POST /_control/{ep}  {"mode": "ok" | "not_registered" | "device_error" | "timeout" | "server_error"}
//   GET  /_control/requests   -> every request received, oldest first
//   DELETE /_control          -> forget modes and requests
import http from "node:http";

const port = Number(process.argv[2] ?? process.env.FAKE_LESHAN_PORT ?? 18080);
const modes = new Map();
const requests = [];

function send(res, status, body) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": typeof body === "string" ? "text/plain" : "application/json",
  });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", () => resolve(""));
  });
}

/** The node a read returns: a single resource, an instance or an object. */
function content(ids) {
  const [o, i, r] = ids;
  if (r !== undefined) return { kind: "singleResource", id: Number(r), type: "STRING", value: "fake" };
  if (i !== undefined) return { kind: "instance", id: Number(i), resources: [] };
  return { kind: "obj", id: Number(o), instances: [] };
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://fake");
  const body = await readBody(req);
  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);

  if (parts[0] === "_control") {
    if (req.method === "DELETE") {
      modes.clear();
      requests.length = 0;
      return send(res, 200, { ok: true });
    }
    if (req.method === "GET" && parts[1] === "requests") return send(res, 200, requests);
    if (req.method === "POST" && parts[1]) {
      let mode = "ok";
      try {
        mode = JSON.parse(body || "{}").mode ?? "ok";
      } catch {
        return send(res, 400, "body must be JSON");
      }
      modes.set(parts[1], mode);
      return send(res, 200, { ep: parts[1], mode });
    }
    return send(res, 404, "unknown control request");
  }

  if (parts[0] !== "api" || parts[1] !== "clients") return send(res, 404, "not found");
  if (parts.length === 2) return send(res, 200, []);

  const ep = parts[2];
  const ids = parts.slice(3);
  requests.push({ method: req.method, ep, path: "/" + ids.join("/"), query: url.search, body, at: Date.now() });
  const mode = modes.get(ep) ?? "ok";
  switch (mode) {
    case "not_registered":
      return send(res, 400, `no registered client with id '${ep}'`);
    case "server_error":
      return send(res, 500, "internal error");
    case "timeout":
      // What Leshan says when the device did not answer in time.
      return send(res, 504, "request timed out");
    case "device_error":
      // A device-side error still comes as HTTP 200.
      return send(res, 200, {
        status: "NOT_FOUND",
        valid: true,
        success: false,
        failure: true,
        errormessage: "resource not found on the device",
      });
    default:
      break;
  }
  if (req.method === "GET") {
    return send(res, 200, { status: "CONTENT", valid: true, success: true, failure: false, content: content(ids) });
  }
  if (req.method === "PUT" || req.method === "POST") {
    return send(res, 200, { status: "CHANGED", valid: true, success: true, failure: false });
  }
  return send(res, 405, "method not allowed");
});

server.listen(port, "127.0.0.1", () => {
  console.log(`fake LwM2M REST server on http://127.0.0.1:${port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
