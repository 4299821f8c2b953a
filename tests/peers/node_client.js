#!/usr/bin/env node
// An LwM2M 1.0 client built on the npm package lwm2m-node-lib (an
// independent implementation, run here as a separate process and used
// through its client API only), for tests/lwm2m_peers.rs.
//
// It registers (lwm2m=1.0&b=U) with objects /3/0 and /3303/0, answers the
// server's reads and writes, changes the observed temperature
// /3303/0/5700 a few times, and after --seconds de-registers and exits.
// Every step is printed as one JSON object per line on stdout.
//
// Usage: node node_client.js --server 127.0.0.1:5683 --ep node-1 --seconds 8
'use strict';

const path = require('path');
const lwm2m = require(path.join(__dirname, 'node_modules', 'lwm2m-node-lib'));
const client = lwm2m.client;
// The library logs through logops at INFO whatever its config says.
require(path.join(__dirname, 'node_modules', 'logops')).setLevel('FATAL');

function arg(name, fallback) {
    const i = process.argv.indexOf('--' + name);
    return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function log(event, fields) {
    console.log(JSON.stringify(Object.assign({ event: event }, fields || {})));
}

const [host, port] = arg('server', '127.0.0.1:5683').split(':');
const endpoint = arg('ep', 'node-1');
const seconds = Number(arg('seconds', '8'));
const every = Number(arg('notify-every-ms', '500'));

client.init({
    client: {
        lifetime: '60',
        version: '1.0',
        logLevel: 'FATAL',
        ipProtocol: 'udp4',
        serverProtocol: 'udp4',
        // The content formats this client's CoAP stack (node-coap) can
        // name in options: without them, a request whose Accept option is
        // an LwM2M format cannot be parsed.
        formats: [
            { name: 'application/vnd.oma.lwm2m+tlv', value: 11542 },
            { name: 'application/vnd.oma.lwm2m+json', value: 11543 },
            { name: 'application/senml+json', value: 110 },
            { name: 'application/senml+cbor', value: 112 },
        ],
        writeFormat: 'text/plain',
    },
});

function step(fn) {
    return new Promise((resolve, reject) => fn((error, result) => (error ? reject(error) : resolve(result))));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
    const registry = client.registry;
    await step((cb) => registry.create('/3/0', cb));
    await step((cb) => registry.setResource('/3/0', '0', 'lwm2m-node-lib peer', cb));
    await step((cb) => registry.setResource('/3/0', '1', 'node-model', cb));
    await step((cb) => registry.setResource('/3/0', '15', 'UTC', cb));
    await step((cb) => registry.create('/3303/0', cb));
    let temperature = 18.5;
    await step((cb) => registry.setResource('/3303/0', '5700', String(temperature), cb));

    const device = await step((cb) => client.register(host, Number(port), '', endpoint, cb));
    log('registered', { location: device.location, port: device.localPort });

    client.setHandler(device.serverInfo, 'read', (objectType, objectId, resourceId, value, cb) => {
        log('read', { path: `/${objectType}/${objectId}/${resourceId}`, value: String(value) });
        cb(null, value);
    });
    client.setHandler(device.serverInfo, 'write', (objectType, objectId, resourceId, value, cb) => {
        log('write', { path: `/${objectType}/${objectId}/${resourceId}`, value: String(value) });
        cb(null);
    });
    client.setHandler(device.serverInfo, 'execute', (objectType, objectId, resourceId, args, cb) => {
        log('execute', { path: `/${objectType}/${objectId}/${resourceId}` });
        cb(null);
    });

    const end = Date.now() + seconds * 1000;
    const changed = [];
    while (Date.now() < end) {
        await sleep(every);
        const observers = await step((cb) => client.listObservers(cb));
        if (observers.length > 0) {
            temperature = Math.round((temperature + 0.5) * 100) / 100;
            await step((cb) => registry.setResource('/3303/0', '5700', String(temperature), cb));
            changed.push(temperature);
            log('notify', { path: '/3303/0/5700', value: temperature, observers: observers.map((o) => o.id) });
        }
    }

    await step((cb) => client.unregister(device, cb));
    log('deregistered', { changed: changed });
    process.exit(0);
}

process.on('uncaughtException', (e) => {
    log('error', { message: String(e && e.stack ? e.stack : e) });
    process.exit(2);
});

main().catch((e) => {
    log('error', { message: String(e && e.stack ? e.stack : e) });
    process.exit(1);
});
