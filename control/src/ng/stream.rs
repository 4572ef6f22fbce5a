//! Message boundaries of ng over a byte stream (rtpengine `control_ng.c`, `chunk_message`:
//! `--listen-tcp-ng`).
//!
//! TCP carries the same `COOKIE SP BODY` messages as UDP, back to back, with no length
//! prefix: a message ends where its body (one bencode dictionary, or one JSON object — which
//! rtpengine does not accept over TCP, we do) is complete. [`StreamDecoder`] finds those ends
//! sans IO. Its scanner resumes where the previous read stopped, so a client that trickles a
//! message byte by byte costs linear time, not quadratic.

use crate::bencode::MAX_DEPTH;

/// Longest cookie accepted. Kamailio's are under 30 bytes (`<pid>_<counter>`); anything
/// longer without a space is not ng.
pub(crate) const MAX_COOKIE: usize = 256;
/// Largest message accepted on a stream: a generous SDP offer with many candidates is
/// ~20 KiB; Kamailio's reply buffer is 256 KiB.
pub(crate) const MAX_MESSAGE: usize = 256 * 1024;

/// Why the stream cannot be read further: the connection is answered (if there is a cookie)
/// and closed, since the next message's start is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("no cookie within {MAX_COOKIE} bytes")]
    NoCookie,
    #[error("message body is neither a bencode dictionary nor a JSON object")]
    BadBody,
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLarge,
}

/// Where the body scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Before the cookie's space.
    Cookie,
    /// Bencode: at the start of a value.
    Value,
    /// Bencode: inside an integer, until `e`.
    Int,
    /// Bencode: the digits of a string length so far.
    Len(usize),
    /// Bencode: bytes of a string still to skip.
    Str(usize),
    /// JSON: `in_string`, `escaped`.
    Json { in_string: bool, escaped: bool },
}

/// Splits a byte stream into ng messages (`COOKIE SP BODY`).
#[derive(Debug)]
pub(crate) struct StreamDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` scanned so far.
    pos: usize,
    /// Open containers (bencode lists/dictionaries, JSON objects/arrays).
    depth: usize,
    scan: Scan,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        StreamDecoder {
            buf: Vec::new(),
            pos: 0,
            depth: 0,
            scan: Scan::Cookie,
        }
    }
}

impl StreamDecoder {
    /// Append bytes read from the stream.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet returned as a message.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Everything still buffered (for the error reply of a stream that cannot be framed).
    pub(crate) fn take_rest(&mut self) -> Vec<u8> {
        self.pos = 0;
        self.depth = 0;
        self.scan = Scan::Cookie;
        std::mem::take(&mut self.buf)
    }

    /// The next complete message (cookie, space and body), `Ok(None)` when more bytes are
    /// needed.
    pub(crate) fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.scan == Scan::Cookie && self.pos == 0 {
            // Line ends between messages (a client typing into `nc`) are not part of one.
            let skip = self
                .buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
                .count();
            self.buf.drain(..skip);
        }
        match self.scan_body()? {
            Some(end) => {
                let message: Vec<u8> = self.buf.drain(..end).collect();
                self.pos = 0;
                self.depth = 0;
                self.scan = Scan::Cookie;
                Ok(Some(message))
            }
            None if self.buf.len() > MAX_MESSAGE => Err(FrameError::TooLarge),
            None => Ok(None),
        }
    }

    /// Advance the scanner over the buffered bytes; the message's length once complete.
    fn scan_body(&mut self) -> Result<Option<usize>, FrameError> {
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            match self.scan {
                Scan::Cookie => {
                    if b == b' ' {
                        let Some(&first) = self.buf.get(self.pos + 1) else {
                            return Ok(None);
                        };
                        self.scan = match first {
                            b'd' => Scan::Value,
                            b'{' => Scan::Json {
                                in_string: false,
                                escaped: false,
                            },
                            _ => return Err(FrameError::BadBody),
                        };
                    } else if self.pos >= MAX_COOKIE {
                        return Err(FrameError::NoCookie);
                    }
                    self.pos += 1;
                }
                Scan::Value => {
                    self.pos += 1;
                    match b {
                        b'i' => self.scan = Scan::Int,
                        b'0'..=b'9' => self.scan = Scan::Len(usize::from(b - b'0')),
                        b'l' | b'd' => {
                            self.depth += 1;
                            if self.depth > MAX_DEPTH {
                                return Err(FrameError::BadBody);
                            }
                        }
                        b'e' if self.depth > 0 => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                return Ok(Some(self.pos));
                            }
                        }
                        _ => return Err(FrameError::BadBody),
                    }
                }
                Scan::Int => {
                    self.pos += 1;
                    match b {
                        b'e' => self.scan = Scan::Value,
                        b'0'..=b'9' | b'-' => {}
                        _ => return Err(FrameError::BadBody),
                    }
                }
                Scan::Len(n) => {
                    self.pos += 1;
                    match b {
                        b'0'..=b'9' => {
                            let n = n
                                .checked_mul(10)
                                .and_then(|n| n.checked_add(usize::from(b - b'0')))
                                .filter(|&n| n <= MAX_MESSAGE)
                                .ok_or(FrameError::TooLarge)?;
                            self.scan = Scan::Len(n);
                        }
                        b':' => self.scan = Scan::Str(n),
                        _ => return Err(FrameError::BadBody),
                    }
                }
                Scan::Str(n) => {
                    let take = n.min(self.buf.len() - self.pos);
                    self.pos += take;
                    self.scan = if take == n {
                        Scan::Value
                    } else {
                        Scan::Str(n - take)
                    };
                }
                Scan::Json { in_string, escaped } => {
                    self.pos += 1;
                    if in_string {
                        self.scan = Scan::Json {
                            in_string: escaped || b != b'"',
                            escaped: !escaped && b == b'\\',
                        };
                        continue;
                    }
                    match b {
                        b'"' => {
                            self.scan = Scan::Json {
                                in_string: true,
                                escaped: false,
                            }
                        }
                        b'{' | b'[' => {
                            self.depth += 1;
                            if self.depth > MAX_DEPTH {
                                return Err(FrameError::BadBody);
                            }
                        }
                        b'}' | b']' => {
                            // The first byte is `{`, so depth is at least 1 here.
                            self.depth = self.depth.saturating_sub(1);
                            if self.depth == 0 {
                                return Ok(Some(self.pos));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(decoder: &mut StreamDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(m) = decoder.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    const PING: &[u8] = b"c1 d7:command4:pinge";
    const OFFER: &[u8] =
        b"k_9 d3:sdp12:v=0\r\no=- 1 17:command5:offer5:flagsl3:ICEe1:xi-5e1:yi10e0:0:e";

    #[test]
    fn back_to_back_messages_split_at_the_end_of_each_dictionary() {
        let mut d = StreamDecoder::default();
        let mut stream = PING.to_vec();
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(OFFER);
        stream.extend_from_slice(PING);
        d.push(&stream);
        assert_eq!(
            all(&mut d),
            vec![PING.to_vec(), OFFER.to_vec(), PING.to_vec()]
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn bytes_trickled_one_at_a_time_make_the_same_messages() {
        let mut d = StreamDecoder::default();
        let mut got = Vec::new();
        for chunk in [PING, OFFER].concat().chunks(1) {
            d.push(chunk);
            got.extend(all(&mut d));
        }
        assert_eq!(got, vec![PING.to_vec(), OFFER.to_vec()]);
    }

    #[test]
    fn string_contents_never_end_a_message() {
        // `e` and `d` inside strings, a string split across reads.
        let msg = b"x d4:eeee5:dddde3:abci1ee";
        let mut d = StreamDecoder::default();
        d.push(&msg[..12]);
        assert_eq!(d.next_message().unwrap(), None);
        d.push(&msg[12..]);
        assert_eq!(d.next_message().unwrap(), Some(msg.to_vec()));
    }

    #[test]
    fn json_bodies_end_at_their_closing_brace() {
        let msg = br#"j1 {"command":"ping","x":"}\"{","l":[1,{"a":2}]}"#;
        let mut d = StreamDecoder::default();
        d.push(msg);
        d.push(PING);
        assert_eq!(all(&mut d), vec![msg.to_vec(), PING.to_vec()]);
    }

    #[test]
    fn garbage_is_an_error_not_a_wait() {
        let mut d = StreamDecoder::default();
        d.push(b"c1 hello\n");
        assert_eq!(d.next_message(), Err(FrameError::BadBody));
        let mut d = StreamDecoder::default();
        d.push(b"c1 d7:command4:pingXe");
        assert_eq!(d.next_message(), Err(FrameError::BadBody));
        let mut d = StreamDecoder::default();
        d.push(&[b'a'; MAX_COOKIE + 1]);
        assert_eq!(d.next_message(), Err(FrameError::NoCookie));
        let mut d = StreamDecoder::default();
        d.push(b"c1 d3:sdp99999999999:");
        assert_eq!(d.next_message(), Err(FrameError::TooLarge));
        let mut d = StreamDecoder::default();
        d.push(&[b"c1 ".as_slice(), &[b'l'; MAX_DEPTH + 2]].concat());
        // `l` is not a dictionary: refused at once.
        assert_eq!(d.next_message(), Err(FrameError::BadBody));
        let mut d = StreamDecoder::default();
        d.push(&[b"c1 d".as_slice(), &[b'l'; MAX_DEPTH + 2]].concat());
        assert_eq!(d.next_message(), Err(FrameError::BadBody));
    }

    #[test]
    fn an_endless_message_is_too_large() {
        let mut d = StreamDecoder::default();
        d.push(b"c1 d3:sdpl");
        for _ in 0..(MAX_MESSAGE / 4096 + 1) {
            d.push(&b"i1e".repeat(1366));
            if let Err(e) = d.next_message() {
                assert_eq!(e, FrameError::TooLarge);
                return;
            }
        }
        panic!("never refused");
    }

    #[test]
    fn take_rest_returns_the_unframed_bytes() {
        let mut d = StreamDecoder::default();
        d.push(b"c9 d3:foo");
        assert_eq!(d.next_message().unwrap(), None);
        assert_eq!(d.take_rest(), b"c9 d3:foo".to_vec());
        d.push(PING);
        assert_eq!(d.next_message().unwrap(), Some(PING.to_vec()));
    }
}
