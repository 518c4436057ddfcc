#!/usr/bin/env python3
"""Regenerate the framing vectors under tests/vectors/{stream,dgram,split}.

Each vector is NAME.sip (the raw bytes) plus NAME.expect (the events the
framer must produce with default limits). Expect lines:
    MESSAGE <len> <body_len>   a whole message
    PING [xN]                  a keepalive ping (N times)
    PONG                       a keepalive pong
    ERROR <STATUS_NAME>        a framing error (stream: terminal, stops the run)
    AGAIN                      (dgram only) nothing delivered
    PENDING                    (stream only) a message is still in progress at the end
Names: ok_*.sip never fail, err_<STATUS>_*.sip end in that error.

tests/vectors/split holds messages for the datagram splitter
(src/sipmsg/splitter_dgram.c, tests/unit/test_sipmsg_split.c); its .expect
files say what the splitter reads from the header block:
    SPLIT <header_len> <content_length>   it may be cut into records
    WHOLE                                 it cannot be reassembled: one record
    DIFFERS                               (extra line) the splitter before it
                                          moved to src/sipmsg cut it otherwise
Names there: ok_* are reassembled exactly, odd_* have a Content-Length that
does not match the body, bad_* have a header block the receiver refuses.
Run from anywhere: python3 tests/vectors/make_vectors.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

SDP = (
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n"
    "s=Session SDP\r\n"
    "c=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\n"
    "m=audio 49172 RTP/SAVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)


def invite(cseq=1, branch="z9hG4bK776asdhds", body=SDP, eol="\r\n", cl=None):
    hdrs = [
        "INVITE sips:bob@biloxi.example.com SIP/2.0",
        "Via: SIP/2.0/TLS client.atlanta.example.com:5061;branch=%s" % branch,
        "Max-Forwards: 70",
        "To: Bob <sips:bob@biloxi.example.com>",
        "From: Alice <sips:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
        "CSeq: %d INVITE" % cseq,
        "Contact: <sips:alice@client.atlanta.example.com;transport=tls>",
        "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO",
        "Supported: replaces, timer, 100rel",
        "User-Agent: siptls-vectors/1.0",
        "Content-Type: application/sdp",
        "Content-Length: %s" % (len(body) if cl is None else cl),
    ]
    return eol.join(hdrs) + eol + eol + body


def options(cseq=1, eol="\r\n"):
    hdrs = [
        "OPTIONS sips:carol@chicago.example.com SIP/2.0",
        "Via: SIP/2.0/TLS pc33.atlanta.example.com:5061;branch=z9hG4bKhjhs8ass877",
        "Max-Forwards: 70",
        "To: <sips:carol@chicago.example.com>",
        "From: Alice <sips:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710",
        "CSeq: %d OPTIONS" % cseq,
        "Contact: <sips:alice@pc33.atlanta.example.com>",
        "Accept: application/sdp",
        "Content-Length: 0",
    ]
    return eol.join(hdrs) + eol + eol


def ok200(eol="\r\n"):
    hdrs = [
        "SIP/2.0 200 OK",
        "Via: SIP/2.0/TLS pc33.atlanta.example.com:5061;branch=z9hG4bKhjhs8ass877;received=192.0.2.4",
        "To: <sips:carol@chicago.example.com>;tag=93810874",
        "From: Alice <sips:alice@atlanta.example.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710",
        "CSeq: 1 OPTIONS",
        "Contact: <sips:carol@chicago.example.com>",
        "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE",
        "Content-Length: 0",
    ]
    return eol.join(hdrs) + eol + eol


def register():
    hdrs = [
        "REGISTER sips:registrar.biloxi.example.com SIP/2.0",
        "Via: SIP/2.0/TLS bobspc.biloxi.example.com:5061;branch=z9hG4bKnashds7",
        "Via: SIP/2.0/TLS proxy.biloxi.example.com:5061;branch=z9hG4bK77ef4c2312983.1",
        "Max-Forwards: 70",
        "To: Bob <sips:bob@biloxi.example.com>",
        "From: Bob <sips:bob@biloxi.example.com>;tag=456248",
        "Call-ID: 843817637684230@998sdasdh09",
        "CSeq: 1826 REGISTER",
        "Contact: <sips:bob@192.0.2.4>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\"",
        "Supported: outbound, path",
        "Expires: 7200",
        "Content-Length: 0",
    ]
    return "\r\n".join(hdrs) + "\r\n\r\n"


def compact():
    body = "Hello, Bob!"
    hdrs = [
        "MESSAGE sips:bob@biloxi.example.com SIP/2.0",
        "v: SIP/2.0/TLS pc33.atlanta.example.com;branch=z9hG4bK776sgdkse",
        "Max-Forwards: 70",
        "f: <sips:alice@atlanta.example.com>;tag=49583",
        "t: <sips:bob@biloxi.example.com>",
        "i: asd88asd77a@1.2.3.4",
        "CSeq: 1 MESSAGE",
        "c: text/plain",
        "l:%d" % len(body),
    ]
    return "\r\n".join(hdrs) + "\r\n\r\n" + body


def ev_msg(m, body_len):
    return "MESSAGE %d %d" % (len(m.encode()), body_len)


def hdr_body(m):
    i = m.find("\r\n\r\n")
    j = m.find("\n\n")
    ends = [x + 4 for x in [i] if x >= 0] + [x + 2 for x in [j] if x >= 0]
    return min(ends)


def write(sub, name, data, expect):
    d = os.path.join(HERE, sub)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, name + ".sip"), "wb") as fp:
        fp.write(data)
    with open(os.path.join(d, name + ".expect"), "w") as fp:
        fp.write("\n".join(expect) + "\n")


def msg_event(m):
    b = len(m.encode()) - hdr_body(m)
    return "MESSAGE %d %d" % (len(m.encode()), b)


def stream():
    inv, opt, ok, reg, cmp_ = invite(), options(), ok200(), register(), compact()
    for name, m in [("ok_invite_sdp", inv), ("ok_options", opt), ("ok_200ok", ok),
                    ("ok_register", reg), ("ok_compact", cmp_)]:
        write("stream", name, m, [msg_event(m)])
    lf = invite(eol="\n", body=SDP.replace("\r\n", "\n"))
    write("stream", "ok_lf_only", lf, [msg_event(lf)])
    # Header block ends in CRLF LF, then LF CRLF.
    m1 = options().replace("Content-Length: 0\r\n\r\n", "Content-Length: 0\r\n\n")
    m2 = options(cseq=2).replace("Content-Length: 0\r\n\r\n", "Content-Length: 0\n\r\n")
    write("stream", "ok_mixed_eol", m1 + m2, ["MESSAGE %d 0" % len(m1), "MESSAGE %d 0" % len(m2)])
    pipe = [invite(cseq=1), opt, ok, reg, cmp_, invite(cseq=2, branch="z9hG4bK776asdhdt"), opt]
    write("stream", "ok_pipelined", "".join(pipe), [msg_event(m) for m in pipe])
    write("stream", "ok_ping", "\r\n\r\n", ["PING"])
    write("stream", "ok_two_pings", "\r\n\r\n\r\n\r\n", ["PING", "PING"])
    write("stream", "ok_pong_then_message", "\r\n" + opt, ["PONG", msg_event(opt)])
    write("stream", "ok_ping_between_messages", opt + "\r\n\r\n" + ok, [msg_event(opt), "PING", msg_event(ok)])
    write("stream", "ok_ping_pong_message", "\r\n\r\n\r\n" + opt, ["PING", "PONG", msg_event(opt)])
    write("stream", "ok_lf_keepalives", "\n\n\r\n\n" + opt, ["PING", "PING", msg_event(opt)])
    write("stream", "ok_crlf_flood", "\r\n" * 6000, ["PING x3000"])
    write("stream", "ok_crlf_flood_then_message", "\r\n" * 1001 + ok, ["PING x500", "PONG", msg_event(ok)])
    # A lone CRLF at the end waits for its successor (no end_chunk here).
    write("stream", "ok_trailing_lone_crlf", opt + "\r\n", [msg_event(opt)])
    m = opt.replace("Content-Length: 0", "Content-Length: 0\r\nContent-Length: 0")
    write("stream", "ok_cl_duplicate_equal", m, [msg_event(m)])
    m = invite().replace("Content-Length: %d" % len(SDP), "content-LENGTH \t: \t%d \t\r\nl: 00%d" % (len(SDP), len(SDP)))
    write("stream", "ok_cl_whitespace_case", m, [msg_event(m)])
    m = invite(cl="000000000000000000000%d" % len(SDP))
    write("stream", "ok_cl_leading_zeros", m, [msg_event(m)])
    # Headers that look like Content-Length but are not.
    m = opt.replace("Accept: application/sdp", "Location: x\r\nContent-Length-Foo: abc\r\nContent-Language: en\r\nLx: 5")
    write("stream", "ok_cl_lookalikes", m, [msg_event(m)])
    # Body bytes look like headers, CRLFs and a start line: only Content-Length counts.
    body = "\r\n\r\nOPTIONS sip:x SIP/2.0\r\nContent-Length: 99\r\n\r\n"
    m = invite(body=body)
    write("stream", "ok_body_looks_like_message", m + opt, [msg_event(m), msg_event(opt)])
    inc = invite()[:-10]
    write("stream", "ok_incomplete_body", inc, ["PENDING"])
    write("stream", "ok_incomplete_headers", invite()[:200], ["PENDING"])
    write("stream", "ok_empty", "", [])

    # Errors.
    write("stream", "err_FRAME_NO_CL_options", opt.replace("Content-Length: 0\r\n", ""),
          ["ERROR SIPTLS_ERR_FRAME_NO_CL"])
    write("stream", "err_FRAME_NO_CL_after_message", ok + opt.replace("Content-Length: 0\r\n", "") + ok,
          [msg_event(ok), "ERROR SIPTLS_ERR_FRAME_NO_CL"])
    for tag, v in [("negative", "-5"), ("plus", "+5"), ("nonnumeric", "abc"), ("hex", "0x10"),
                   ("overflow", "99999999999999999999"), ("empty", ""), ("inner_space", "1 2"),
                   ("trailing_junk", "12;x")]:
        write("stream", "err_FRAME_BAD_CL_" + tag, opt.replace("Content-Length: 0", "Content-Length: " + v),
              ["ERROR SIPTLS_ERR_FRAME_BAD_CL"])
    write("stream", "err_FRAME_BAD_CL_compact_negative", opt.replace("Content-Length: 0", "l: -1"),
          ["ERROR SIPTLS_ERR_FRAME_BAD_CL"])
    write("stream", "err_FRAME_DUP_CL_conflict", opt.replace("Content-Length: 0", "Content-Length: 0\r\nContent-Length: 5"),
          ["ERROR SIPTLS_ERR_FRAME_DUP_CL"])
    write("stream", "err_FRAME_DUP_CL_compact", opt.replace("Content-Length: 0", "l: 3\r\nContent-Length: 0"),
          ["ERROR SIPTLS_ERR_FRAME_DUP_CL"])
    write("stream", "err_FRAME_TOO_BIG_cl", opt.replace("Content-Length: 0", "Content-Length: 70000"),
          ["ERROR SIPTLS_ERR_FRAME_TOO_BIG"])
    write("stream", "err_FRAME_TOO_BIG_cl_64bit", opt.replace("Content-Length: 0", "Content-Length: 18446744073709551615"),
          ["ERROR SIPTLS_ERR_FRAME_TOO_BIG"])
    big = opt.replace("Accept: application/sdp", "X-Pad: " + "a" * 16400)
    write("stream", "err_FRAME_HDR_TOO_BIG_long_header", big, ["ERROR SIPTLS_ERR_FRAME_HDR_TOO_BIG"])
    write("stream", "err_FRAME_HDR_TOO_BIG_no_newline", "OPTIONS " + "x" * 16400, ["ERROR SIPTLS_ERR_FRAME_HDR_TOO_BIG"])
    m = opt.replace("Max-Forwards: 70", "Max-Forwards: 7\x000")
    write("stream", "err_FRAME_GARBAGE_nul_in_header", m, ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("stream", "err_FRAME_GARBAGE_nul_first", "\x00" + opt, ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("stream", "err_FRAME_GARBAGE_http", "GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
          ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("stream", "err_FRAME_GARBAGE_tls_record", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
          ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("stream", "err_FRAME_GARBAGE_bad_status", "SIP/2.0 2x0 OK\r\nContent-Length: 0\r\n\r\n",
          ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("stream", "err_FRAME_GARBAGE_no_uri", "OPTIONS SIP/2.0\r\nContent-Length: 0\r\n\r\n",
          ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("stream", "err_FRAME_GARBAGE_stray_cr", "\r\r\n" + opt, ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("stream", "err_FRAME_GARBAGE_space_first", " " + opt, ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    # Bytes after an error are never looked at: the valid message is not delivered.
    write("stream", "err_FRAME_GARBAGE_then_valid", "garbage line\r\n\r\n" + opt, ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("stream", "err_FRAME_GARBAGE_after_messages", opt + ok + "BYE\r\n\r\n" + opt,
          [msg_event(opt), msg_event(ok), "ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    # Body shorter than announced, then the next message: the framer eats it as body, then the
    # rest is garbage (a start line cannot begin with ":").
    m = opt.replace("Content-Length: 0", "Content-Length: 10")
    write("stream", "err_FRAME_GARBAGE_cl_too_long", m + "abc" + ok,
          ["MESSAGE %d 10" % (len(m) + 10), "ERROR SIPTLS_ERR_FRAME_GARBAGE"])


def dgram():
    inv, opt, ok, cmp_ = invite(), options(), ok200(), compact()
    for name, m in [("ok_invite_sdp", inv), ("ok_options", opt), ("ok_200ok", ok), ("ok_compact", cmp_)]:
        write("dgram", name, m, [msg_event(m)])
    m = invite().replace("Content-Length: %d\r\n" % len(SDP), "")
    write("dgram", "ok_no_cl_body_to_end", m, [msg_event(m)])
    m = opt.replace("Content-Length: 0\r\n", "")
    write("dgram", "ok_no_cl_no_body", m, [msg_event(m)])
    write("dgram", "ok_extra_bytes_discarded", opt + "trailing junk", [msg_event(opt)])
    write("dgram", "ok_leading_crlf", "\r\n\r\n" + opt, [msg_event(opt)])
    write("dgram", "ok_ping", "\r\n\r\n", ["PING"])
    write("dgram", "ok_ping_long", "\r\n\r\n\r\n", ["PING"])
    write("dgram", "ok_pong", "\r\n", ["PONG"])
    write("dgram", "ok_empty_record", "", ["AGAIN"])
    write("dgram", "ok_partial_start", invite()[:-100], ["AGAIN"])
    write("dgram", "err_FRAME_GARBAGE_cr_only", "\r\r", ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("dgram", "err_FRAME_GARBAGE_headers_cut", invite()[:300], ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("dgram", "err_FRAME_GARBAGE_nul", opt.replace("Max-Forwards: 70", "Max-Forwards: \x0070"),
          ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("dgram", "err_FRAME_GARBAGE_http", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", ["ERROR SIPTLS_ERR_FRAME_GARBAGE"])
    write("dgram", "err_FRAME_BAD_CL", opt.replace("Content-Length: 0", "Content-Length: -1"),
          ["ERROR SIPTLS_ERR_FRAME_BAD_CL"])
    write("dgram", "err_FRAME_DUP_CL", opt.replace("Content-Length: 0", "l: 1\r\nContent-Length: 0"),
          ["ERROR SIPTLS_ERR_FRAME_DUP_CL"])
    write("dgram", "err_FRAME_TOO_BIG", opt.replace("Content-Length: 0", "Content-Length: 65536"),
          ["ERROR SIPTLS_ERR_FRAME_TOO_BIG"])
    write("dgram", "err_FRAME_HDR_TOO_BIG", opt.replace("Accept: application/sdp", "X-Pad: " + "b" * 16400),
          ["ERROR SIPTLS_ERR_FRAME_HDR_TOO_BIG"])


# Plaintext bytes per DTLS record at the default dtls_mtu 1200 with AES-GCM
# (docs/dtls.md): the boundary sizes below are around it.
ROOM = 1163

TEXT = ("The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\r\n")


def text(n):
    return (TEXT * (n // len(TEXT) + 1))[:n]


def split_header_len(m):
    """Where the splitter's header block ends: leading CR/LF skipped, then up
    to and including the first empty line after the start line."""
    b = m.encode("latin-1")
    i = 0
    while i < len(b) and b[i] in b"\r\n":
        i += 1
    p = b.index(b"\n", i) + 1
    while True:
        q = b.index(b"\n", p)
        if q == p or (q == p + 1 and b[p:p + 1] == b"\r"):
            return q + 1
        p = q + 1


def sized(hl, body, cl=True, tag="x"):
    """A MESSAGE request whose header block is exactly hl bytes (an X-Pad
    header grows to fit), then `body`."""
    head = ("MESSAGE sips:bob@biloxi.example.com SIP/2.0\r\n"
            "Via: SIP/2.0/DTLS pc33.atlanta.example.com;branch=z9hG4bK776sgdkse\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sips:alice@atlanta.example.com>;tag=49583\r\n"
            "To: <sips:bob@biloxi.example.com>\r\n"
            "Call-ID: split-%s@pc33.atlanta.example.com\r\n"
            "CSeq: 1 MESSAGE\r\n"
            "Content-Type: text/plain\r\n" % tag)
    if cl:
        head += "Content-Length: %d\r\n" % len(body)
    pad = hl - len(head) - len("X-Pad: \r\n\r\n")
    assert pad >= 1, (hl, len(head))
    return head + "X-Pad: " + "p" * pad + "\r\n\r\n" + body


def total(n, hl=600, tag="x"):
    """A message of exactly n bytes with a header block of hl bytes."""
    m = sized(hl, text(n - hl), tag=tag)
    assert len(m) == n
    return m


def split_write(name, m, whole=False, cl=None, differs=False):
    if whole:
        expect = ["WHOLE"]
    else:
        hl = split_header_len(m)
        if cl is None:
            cl = len(m.encode("latin-1")) - hl
        expect = ["SPLIT %d %d" % (hl, cl)]
    if differs:
        expect.append("DIFFERS")
    write("split", name, m, expect)


def split():
    split_write("ok_invite_sdp", invite())
    big_sdp = SDP * 6
    split_write("ok_invite_big_sdp", invite(body=big_sdp))
    # Compact form (RFC 3261 §7.3.3) and no space after the colon.
    body = text(2500)
    m = compact().replace("l:11", "l:%d" % len(body)).replace("Hello, Bob!", body)
    split_write("ok_compact_l", m)
    lf = SDP.replace("\r\n", "\n") * 3
    split_write("ok_lf_only", invite(eol="\n", body=lf))
    # Header blocks ending in CRLF LF and in LF CRLF.
    m = sized(700, text(1800), tag="crlf-lf").replace("\r\n\r\n", "\r\n\n", 1)
    split_write("ok_end_crlf_lf", m)
    m = sized(700, text(1800), tag="lf-crlf").replace("\r\n\r\n", "\n\r\n", 1)
    split_write("ok_end_lf_crlf", m)
    m = invite(body=big_sdp).replace("Content-Length: %d" % len(big_sdp),
                                     "content-LENGTH \t: \t%d \t" % len(big_sdp))
    split_write("ok_cl_whitespace_case", m)
    # RFC 3261 §7.5: CR/LF before the start line is ignored (by the receiver too).
    split_write("ok_leading_crlf", "\r\n" + invite(body=big_sdp))
    split_write("ok_leading_cr_lf_cr", "\r\n\r" + invite(body=big_sdp))
    # Two line ends before the start line: the old splitter took them for the
    # end of the header block and would not split.
    split_write("ok_leading_crlf_crlf", "\r\n\r\n" + invite(body=big_sdp), differs=True)
    split_write("ok_leading_lf_lf", "\n\n" + invite(body=big_sdp), differs=True)
    # Header block larger than one record; headers only (Content-Length: 0).
    split_write("ok_big_headers", sized(3000, text(2500), tag="big-headers"))
    split_write("ok_headers_only_cl_zero", sized(2000, "", tag="headers-only"))
    # Message lengths and header blocks around one record's space.
    for name, n in [("ok_len_room_minus1", ROOM - 1), ("ok_len_room", ROOM), ("ok_len_room_plus1", ROOM + 1),
                    ("ok_len_2room_minus1", 2 * ROOM - 1), ("ok_len_2room", 2 * ROOM),
                    ("ok_len_2room_plus1", 2 * ROOM + 1)]:
        split_write(name, total(n, tag=name[3:]))
    for name, hl in [("ok_hl_room_minus1", ROOM - 1), ("ok_hl_room", ROOM), ("ok_hl_room_plus1", ROOM + 1)]:
        split_write(name, sized(hl, text(500), tag=name[3:]))
    # A body that holds a SIP message (start line, headers, empty line): the
    # receiver drops a partial message when a continuation record looks like
    # the start of a new one (tests/unit/test_sipmsg_split.c predicts where).
    inner = ("INVITE sips:carol@chicago.example.com SIP/2.0\r\n"
             "Call-ID: inner@pc33.atlanta.example.com\r\nContent-Length: 0\r\n\r\n")
    body = (text(298) + "\r\n" + inner) * 8
    m = sized(500, body, tag="sipfrag").replace("text/plain", "message/sip")
    split_write("ok_body_holds_message", m)
    # No Content-Length: cannot be reassembled.
    split_write("ok_no_cl_body", invite(body=big_sdp).replace("Content-Length: %d\r\n" % len(big_sdp), ""),
                whole=True)
    split_write("ok_no_cl_no_body", sized(1500, "", cl=False, tag="no-cl"), whole=True)
    # Content-Length that does not match the body.
    m = sized(600, text(2000), tag="cl-short").replace("Content-Length: 2000", "Content-Length: 1000")
    split_write("odd_cl_less_than_body", m, cl=1000)
    m = sized(600, text(2000), tag="cl-long").replace("Content-Length: 2000", "Content-Length: 3000")
    split_write("odd_cl_more_than_body", m, cl=3000)
    # Header blocks the receiver refuses: never split now (the old splitter did).
    m = sized(600, text(2000), tag="bad-cl").replace("Content-Length: 2000", "Content-Length: 2k")
    split_write("bad_cl_nonnumeric", m, whole=True, differs=True)
    m = sized(600, text(2000), tag="dup-cl").replace("Content-Length: 2000", "l: 1\r\nContent-Length: 2000")
    split_write("bad_cl_conflicting", m, whole=True, differs=True)
    m = sized(600, text(2000), tag="http").replace("MESSAGE sips:bob@biloxi.example.com SIP/2.0",
                                                   "POST /bob HTTP/1.1")
    split_write("bad_start_line", m, whole=True, differs=True)
    m = sized(600, text(2000), tag="nul").replace("Max-Forwards: 70", "Max-Forwards: 7\x000")
    split_write("bad_nul_in_header", m, whole=True, differs=True)
    # No empty line at all: no header block (the old splitter agreed).
    m = sized(600, "", tag="no-end")[:-2] + "X-More: " + "m" * 2000
    split_write("bad_no_empty_line", m, whole=True)


if __name__ == "__main__":
    stream()
    dgram()
    split()
