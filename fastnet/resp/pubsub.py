"""Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and
PUBSUB CHANNELS/NUMSUB/NUMPAT, as Redis 7.0.

Subscriptions live in the server's :class:`~fastnet.resp.shared.Shared`
(channel -> subscribers in subscription order; pattern -> its compiled glob
and subscribers) and on each Session (its own channels and patterns, which
put a RESP2 client in subscribed mode: see ``intercept`` in
fastnet.resp.commands). PUBLISH writes each message to every subscriber's
connection at once, through the seam's push path (``Session.push``: after
the replies of a batch the subscriber itself is running), encoded for that
subscriber's protocol: an array in RESP2, a push (``>``) in RESP3.

A subscriber that does not read is bounded as Redis bounds it
(client-output-buffer-limit pubsub, default 32mb 8mb 60): once the output
the engine holds for it passes the hard limit, or stays over the soft limit
for the soft seconds, it is disconnected at once (its queued output
dropped), so a slow subscriber never grows the server's memory.
"""
from __future__ import annotations

import logging
import time

from ..codec.resp._encode import encode_array, encode_integer, encode_push
from ..errors import EngineError
from .commands import Command, Handler, Session, _no_subcommand, compile_glob, glob_match

__all__ = ["PUBSUB_COMMANDS", "check_output", "unsubscribe_all"]

log = logging.getLogger("fastnet.resp")


def _confirm(session: Session, kind: bytes, name: bytes | None) -> bytes:
    """One (un)subscription's reply: kind, the name, the count left."""
    count = len(session.channels) + len(session.patterns)
    return encode_push([kind, name, count], session.protocol)


def check_output(session: Session) -> None:
    """Disconnect session if its queued output is over its class's limit
    (Redis's checkClientOutputBufferLimits, pubsub class for subscribers)."""
    conn = session.conn
    if conn is None or conn.closed:
        return
    kind = "pubsub" if session.channels or session.patterns else "normal"
    hard, soft, seconds = session.shared.output_limits[kind]
    if not hard and not soft:
        return
    try:
        used = conn.server.engine.output_size(conn.id)
        if session.outbox is not None:
            used += session.outbox.size
    except EngineError:
        return  # gone already: its close is on the way
    over = bool(hard) and used >= hard
    if soft and used >= soft:
        now = time.monotonic()
        if session.over_soft_since is None:
            session.over_soft_since = now
        over = over or now - session.over_soft_since >= seconds
    else:
        session.over_soft_since = None
    if over:
        log.warning("client id=%d closed for overcoming of output buffer limits "
                    "(%d bytes queued, class %s)", session.id, used, kind)
        conn.abort()
        # Gone for the next command even where the engine reports the close
        # later (the threaded engine's connection thread), as Redis frees it.
        unsubscribe_all(session)


def _deliver(session: Session, payload: list[bytes], encoded: dict[int, bytes]) -> None:
    data = encoded.get(session.protocol)
    if data is None:
        data = encoded[session.protocol] = encode_push(payload, session.protocol)
    session.push(data)
    if session.batch is None:
        check_output(session)


def publish(session: Session, channel: bytes, message: bytes) -> int:
    """Send message to channel's subscribers, then to those of every
    matching pattern; how many received it."""
    shared = session.shared
    receivers = 0
    subscribers = shared.channels.get(channel)
    if subscribers:
        encoded: dict[int, bytes] = {}
        for subscriber in list(subscribers):
            _deliver(subscriber, [b"message", channel, message], encoded)
            receivers += 1
    for pattern, (tokens, subscribers) in list(shared.patterns.items()):
        if glob_match(tokens, channel):
            encoded = {}
            for subscriber in list(subscribers):
                _deliver(subscriber, [b"pmessage", pattern, channel, message], encoded)
                receivers += 1
    return receivers


def cmd_publish(session: Session, args: list[bytes]) -> bytes:
    """PUBLISH channel message: how many clients received it."""
    return encode_integer(publish(session, args[1], args[2]))


def cmd_subscribe(session: Session, args: list[bytes]) -> bytes:
    """SUBSCRIBE channel...: one confirmation per channel."""
    replies = []
    for channel in args[1:]:
        if channel not in session.channels:
            session.channels[channel] = None
            session.shared.channels.setdefault(channel, {})[session] = None
        replies.append(_confirm(session, b"subscribe", channel))
    return b"".join(replies)


def _drop_channel(session: Session, channel: bytes) -> None:
    session.channels.pop(channel, None)
    subscribers = session.shared.channels.get(channel)
    if subscribers is not None:
        subscribers.pop(session, None)
        if not subscribers:
            del session.shared.channels[channel]


def cmd_unsubscribe(session: Session, args: list[bytes]) -> bytes:
    """UNSUBSCRIBE [channel...]: one confirmation per channel (every
    channel without arguments; a null channel if there were none)."""
    channels = args[1:] or list(session.channels)
    if not channels:
        return _confirm(session, b"unsubscribe", None)
    replies = []
    for channel in channels:
        _drop_channel(session, channel)
        replies.append(_confirm(session, b"unsubscribe", channel))
    return b"".join(replies)


def cmd_psubscribe(session: Session, args: list[bytes]) -> bytes:
    """PSUBSCRIBE pattern...: one confirmation per pattern."""
    replies = []
    for pattern in args[1:]:
        if pattern not in session.patterns:
            session.patterns[pattern] = None
            entry = session.shared.patterns.get(pattern)
            if entry is None:
                entry = session.shared.patterns[pattern] = (compile_glob(pattern), {})
            entry[1][session] = None
        replies.append(_confirm(session, b"psubscribe", pattern))
    return b"".join(replies)


def _drop_pattern(session: Session, pattern: bytes) -> None:
    session.patterns.pop(pattern, None)
    entry = session.shared.patterns.get(pattern)
    if entry is not None:
        entry[1].pop(session, None)
        if not entry[1]:
            del session.shared.patterns[pattern]


def cmd_punsubscribe(session: Session, args: list[bytes]) -> bytes:
    """PUNSUBSCRIBE [pattern...]: as UNSUBSCRIBE, for patterns."""
    patterns = args[1:] or list(session.patterns)
    if not patterns:
        return _confirm(session, b"punsubscribe", None)
    replies = []
    for pattern in patterns:
        _drop_pattern(session, pattern)
        replies.append(_confirm(session, b"punsubscribe", pattern))
    return b"".join(replies)


def unsubscribe_all(session: Session) -> None:
    """The client is gone: drop every subscription it held."""
    for channel in list(session.channels):
        _drop_channel(session, channel)
    for pattern in list(session.patterns):
        _drop_pattern(session, pattern)


def pubsub_channels(session: Session, args: list[bytes]) -> bytes:
    """PUBSUB CHANNELS [pattern]: the channels with a subscriber."""
    channels = list(session.shared.channels)
    if len(args) == 3:
        tokens = compile_glob(args[2])
        channels = [c for c in channels if glob_match(tokens, c)]
    return encode_array(channels, session.protocol)


def pubsub_numsub(session: Session, args: list[bytes]) -> bytes:
    """PUBSUB NUMSUB [channel...]: each channel and its subscriber count."""
    out: list[object] = []
    for channel in args[2:]:
        out += [channel, len(session.shared.channels.get(channel, ()))]
    return encode_array(out, session.protocol)


def pubsub_numpat(session: Session, args: list[bytes]) -> bytes:
    """PUBSUB NUMPAT: how many patterns have a subscriber."""
    return encode_integer(len(session.shared.patterns))


#: PUBSUB HELP's lines (Redis 7.0's text: clients show it as it is).
PUBSUB_HELP = [
    b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CHANNELS [<pattern>]",
    b"    Return the currently active channels matching a <pattern> (default: '*').",
    b"NUMPAT",
    b"    Return number of subscriptions to patterns.",
    b"NUMSUB [<channel> ...]",
    b"    Return the number of subscribers for the specified channels, excluding",
    b"    pattern subscriptions(default: no channels).",
    b"SHARDCHANNELS [<pattern>]",
    b"    Return the currently active shard level channels matching a <pattern> (default: '*').",
    b"SHARDNUMSUB [<shardchannel> ...]",
    b"    Return the number of subscribers for the specified shard level channel(s)",
    b"HELP",
    b"    Prints this help.",
]


def help_reply(lines: list[bytes]) -> bytes:
    """A HELP subcommand's reply: its lines as status strings."""
    return b"*%d\r\n" % len(lines) + b"".join(b"+%s\r\n" % line for line in lines)


def pubsub_help(session: Session, args: list[bytes]) -> bytes:
    """PUBSUB HELP: what PUBSUB's subcommands do."""
    return help_reply(PUBSUB_HELP)


def pubsub_shardchannels(session: Session, args: list[bytes]) -> bytes:
    """PUBSUB SHARDCHANNELS [pattern]: no shard channels are served (empty)."""
    return encode_array([], session.protocol)


PUBSUB_SUBCOMMANDS: dict[bytes, tuple[Handler, int]] = {
    b"channels": (pubsub_channels, -2),
    b"numsub": (pubsub_numsub, -2),
    b"numpat": (pubsub_numpat, 2),
    b"help": (pubsub_help, 2),
    b"shardchannels": (pubsub_shardchannels, -2),
}

_SUB_FLAGS = ("pubsub", "noscript", "loading", "stale")


PUBSUB_COMMANDS: dict[bytes, Command] = {
    b"subscribe": Command(cmd_subscribe, -2, _SUB_FLAGS, categories=("@pubsub", "@slow")),
    b"unsubscribe": Command(cmd_unsubscribe, -1, _SUB_FLAGS, categories=("@pubsub", "@slow")),
    b"psubscribe": Command(cmd_psubscribe, -2, _SUB_FLAGS, categories=("@pubsub", "@slow")),
    b"punsubscribe": Command(cmd_punsubscribe, -1, _SUB_FLAGS, categories=("@pubsub", "@slow")),
    b"publish": Command(cmd_publish, 3, ("pubsub", "loading", "stale", "fast"),
                        categories=("@pubsub", "@fast")),
    b"pubsub": Command(_no_subcommand, -2, categories=("@slow",), subcommands=PUBSUB_SUBCOMMANDS),
}
