#!/usr/bin/env python3
"""A small LwM2M 1.1 client built on aiocoap (an independent CoAP stack),
for tests/lwm2m_peers.rs.

One aiocoap context both serves the device's resources and sends the
device's requests, from one UDP port (the LwM2M server reaches a device at
the address its Register came from). It

- registers at coap://SERVER/rd?ep=EP&lt=60&lwm2m=1.1&b=U with
  </>;ct=112,</3/0>,</3303/0>,
- serves GET /3 (SenML CBOR, via cbor2), an observable /3303/0/5700 whose
  value changes on a timer (in SenML CBOR or text, as the Accept option
  asks; 4.06 for any other format), a readable and writable /3/0/15 (timezone), and
  answers 4.04 for anything else,
- with --big, serves a Device object larger than one block, so that the
  read of /3 is answered block-wise (RFC 7959),
- with --big-notify, answers and notifies /3303/0/5700 in SenML CBOR with
  a long sensor-units record (5701), so that every notification is
  block-wise (the server fetches the rest, RFC 7959 §2.6),
- with --package, also registers </5/0> and takes writes of the firmware
  Package /5/0/0 (opaque, or SenML CBOR with a `vd` record), logging the
  size and SHA-256 of what arrived; a large one comes block-wise (RFC 7959
  Block1), reassembled by aiocoap's own Block1 spool,
- sends a Send (POST /dp) in SenML CBOR with a base time,
- and after --seconds de-registers and exits.

Every step is printed as one JSON object per line on stdout
({"event": ...}), for the test to read.
"""
import argparse
import asyncio
import hashlib
import json
import sys
import time

import aiocoap
import aiocoap.resource as resource
import cbor2
from aiocoap import Code, Message
from aiocoap.numbers.contentformat import ContentFormat

SENML_CBOR = 112
TEXT = 0
OPAQUE = 42
# SenML labels in CBOR (RFC 8428 §6)
BN, BT, N, V, VS, T, VD = -2, -3, 0, 2, 3, 6, 8


def log(event, **fields):
    fields["event"] = event
    print(json.dumps(fields, sort_keys=True), flush=True)


def accept_of(request):
    accept = request.opt.accept
    return None if accept is None else int(accept)


def senml_cbor(records):
    return cbor2.dumps(records)


class Device(resource.Resource):
    """Object 3, instance 0 (read as /3)."""

    def __init__(self, big):
        super().__init__()
        self.big = big
        self.timezone = "UTC"

    def records(self):
        manufacturer = "aiocoap peer"
        if self.big:
            # Long enough for the answer to need several 1024-byte blocks.
            manufacturer = "aiocoap peer " + "x" * 3000
        return [
            {BN: "/3/0/", N: "0", VS: manufacturer},
            {N: "1", VS: "aio-model"},
            {N: "2", VS: "serial-0001"},
            {N: "3", VS: "1.0.0"},
            {N: "9", V: 87},
            {N: "15", VS: self.timezone},
        ]

    async def render_get(self, request):
        accept = accept_of(request)
        log("read", path="/3", accept=accept)
        if accept not in (None, SENML_CBOR):
            return Message(code=Code.NOT_ACCEPTABLE)
        return Message(
            code=Code.CONTENT,
            payload=senml_cbor(self.records()),
            content_format=SENML_CBOR,
        )


class Timezone(resource.Resource):
    """/3/0/15: readable and writable, in text or SenML CBOR."""

    def __init__(self, device):
        super().__init__()
        self.device = device

    async def render_get(self, request):
        accept = accept_of(request)
        log("read", path="/3/0/15", accept=accept)
        if accept == SENML_CBOR:
            return Message(
                code=Code.CONTENT,
                payload=senml_cbor([{BN: "/3/0/", N: "15", VS: self.device.timezone}]),
                content_format=SENML_CBOR,
            )
        if accept in (None, TEXT):
            return Message(
                code=Code.CONTENT,
                payload=self.device.timezone.encode(),
                content_format=TEXT,
            )
        return Message(code=Code.NOT_ACCEPTABLE)

    async def render_put(self, request):
        cf = request.opt.content_format
        cf = None if cf is None else int(cf)
        if cf in (None, TEXT):
            value = request.payload.decode()
        elif cf == SENML_CBOR:
            records = cbor2.loads(request.payload)
            value = records[0].get(VS)
        else:
            log("write_refused", path="/3/0/15", content_format=cf)
            return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
        self.device.timezone = value
        log("write", path="/3/0/15", content_format=cf, value=value)
        return Message(code=Code.CHANGED)


class Package(resource.Resource):
    """/5/0/0: the Firmware Update object's Package, write-only."""

    async def render_put(self, request):
        cf = request.opt.content_format
        cf = None if cf is None else int(cf)
        if cf == OPAQUE:
            data = request.payload
        elif cf == SENML_CBOR:
            records = cbor2.loads(request.payload)
            data = next((r[VD] for r in records if VD in r), None)
            if not isinstance(data, bytes):
                log("write_refused", path="/5/0/0", content_format=cf)
                return Message(code=Code.BAD_REQUEST)
        else:
            log("write_refused", path="/5/0/0", content_format=cf)
            return Message(code=Code.UNSUPPORTED_CONTENT_FORMAT)
        log("package", path="/5/0/0", content_format=cf, size=len(data),
            sha256=hashlib.sha256(data).hexdigest())
        return Message(code=Code.CHANGED)


class Temperature(resource.ObservableResource):
    """/3303/0/5700: observable, changes on a timer."""

    def __init__(self, every, big):
        super().__init__()
        self.big = big
        self.value = 20.5
        self.every = every
        self.notified = []
        self.task = None

    def start(self):
        self.task = asyncio.get_running_loop().create_task(self.tick())

    async def tick(self):
        while True:
            await asyncio.sleep(self.every)
            self.value = round(self.value + 0.25, 2)
            if self._observations:
                self.notified.append(self.value)
                log("notify", path="/3303/0/5700", value=self.value,
                    observers=len(self._observations))
            self.updated_state()

    async def add_observation(self, request, serverobservation):
        log("observe", path="/3303/0/5700", accept=accept_of(request))
        await super().add_observation(request, serverobservation)

    async def render_get(self, request):
        accept = accept_of(request)
        if request.opt.observe is None:
            log("read", path="/3303/0/5700", accept=accept)
        if accept == SENML_CBOR:
            records = [{BN: "/3303/0/", N: "5700", V: self.value}]
            if self.big:
                records.append({N: "5701", VS: "Cel" + "-" * 2500})
            return Message(
                code=Code.CONTENT,
                payload=senml_cbor(records),
                content_format=SENML_CBOR,
            )
        if accept in (None, TEXT) and not self.big:
            return Message(
                code=Code.CONTENT, payload=str(self.value).encode(), content_format=TEXT
            )
        return Message(code=Code.NOT_ACCEPTABLE)


class NotFoundSite(resource.Site):
    """A site that logs the paths it does not have (answered 4.04)."""

    async def render_to_pipe(self, pipe):
        try:
            return await super().render_to_pipe(pipe)
        except aiocoap.error.NotFound:
            request = pipe.request
            log("not_found", path="/" + "/".join(request.opt.uri_path),
                method=str(request.code))
            raise


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="host:port of the LwM2M server")
    ap.add_argument("--ep", required=True)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--notify-every", type=float, default=0.5)
    ap.add_argument("--linger", type=float, default=0,
                    help="seconds to go on running (and notifying any observer "
                    "the server left in place) after the De-register")
    ap.add_argument("--big", action="store_true",
                    help="a Device object larger than one block")
    ap.add_argument("--big-notify", action="store_true",
                    help="temperature answers and notifications larger than one block")
    ap.add_argument("--package", action="store_true",
                    help="register </5/0> and take writes of /5/0/0")
    args = ap.parse_args()

    device = Device(args.big)
    temperature = Temperature(args.notify_every, args.big_notify)
    site = NotFoundSite()
    site.add_resource(["3"], device)
    site.add_resource(["3", "0"], device)
    site.add_resource(["3", "0", "15"], Timezone(device))
    site.add_resource(["3303", "0", "5700"], temperature)
    if args.package:
        site.add_resource(["5", "0", "0"], Package())

    # One context serves the resources and sends the requests, on one
    # port of the loopback interface.
    ctx = await aiocoap.Context.create_server_context(
        site, bind=("127.0.0.1", 0), transports=["udp6"]
    )
    server = f"coap://{args.server}"

    links = b"</>;ct=112,</3/0>,</3303/0>"
    if args.package:
        links += b",</5/0>"
    register = Message(
        code=Code.POST,
        uri=f"{server}/rd?ep={args.ep}&lt=60&lwm2m=1.1&b=U",
        payload=links,
        content_format=ContentFormat.LINKFORMAT,
    )
    answer = await asyncio.wait_for(ctx.request(register).response, 30)
    location = "/".join(answer.opt.location_path)
    log("registered", code=str(answer.code), location=location)
    if answer.code != Code.CREATED:
        await ctx.shutdown()
        return 1
    temperature.start()

    # Send: one temperature and one text value, with a base time (s).
    await asyncio.sleep(min(1.0, args.seconds / 4))
    bt = int(time.time()) - 10
    send = Message(
        code=Code.POST,
        uri=f"{server}/dp",
        payload=senml_cbor(
            [
                {BN: "/3303/0/", BT: bt, N: "5700", V: 36.75},
                {BN: "/3/0/", N: "3", VS: "send-fw-2.1", T: 1},
            ]
        ),
        content_format=SENML_CBOR,
    )
    answer = await asyncio.wait_for(ctx.request(send).response, 30)
    log("send", code=str(answer.code), value=36.75)

    await asyncio.sleep(args.seconds)

    deregister = Message(code=Code.DELETE, uri=f"{server}/{location}")
    answer = await asyncio.wait_for(ctx.request(deregister).response, 30)
    log("deregistered", code=str(answer.code), notified=temperature.notified)
    if args.linger > 0:
        await asyncio.sleep(args.linger)
        log("lingered", notified=temperature.notified)
    temperature.task.cancel()
    await ctx.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
