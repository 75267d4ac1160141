//! Chunked transfer coding (RFC 9112 §7.1): a strict, streaming decoder.
//!
//! Place in the request path: every chunked body the proxy reads — a downstream request
//! body or an upstream response body — goes through [`ChunkedDecoder`] before a single
//! byte of it is forwarded. Whether the body is then relayed verbatim (to an HTTP/1.1
//! peer) or de-chunked (to an HTTP/1.0 peer), the decoder is what decides where the
//! message ends, so the proxy and the peer behind it can never disagree on framing
//! (request smuggling, RFC 9112 §11.2).
//!
//! Invariants:
//! - Strict grammar. Anything RFC 9112 §7.1 does not allow is an error, never repaired:
//!   bare LF, bare CR, whitespace before the chunk-size, signs or `0x`, more than 16
//!   significant hex digits, a malformed chunk-ext, data not followed by CRLF, obs-fold
//!   or whitespace before the colon in the trailer section.
//! - Split-invariance. The decoder is a byte-level state machine: feeding a message in
//!   any number of pieces, split anywhere, gives the same payload ranges (in message
//!   order), the same consumed count and the same error as feeding it at once.
//! - Bounded. Chunk extensions and the trailer section are length-limited
//!   ([`ChunkedLimits`]); their content is validated and dropped, never buffered.
//! - Sticky errors. After an error every later [`ChunkedDecoder::feed`] returns the same
//!   error: a connection with broken framing cannot be resumed.
//!
//! Cost: no allocation, O(1) state. Chunk data is passed through as ranges of the
//! caller's buffer (one call per contiguous run); framing bytes cost one `match` each.

use std::ops::Range;

/// Length limits applied while decoding. Both count bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// Most bytes allowed between the chunk-size and the CRLF of one chunk line, i.e.
    /// the whole chunk-ext including its `;`, `=` and whitespace. 0 forbids extensions.
    pub max_chunk_ext: usize,
    /// Most bytes allowed for the trailer field lines together, each counted with its
    /// CRLF; the empty line that ends the message is not counted. 0 forbids trailers.
    pub max_trailer_section: usize,
}

impl Default for ChunkedLimits {
    /// Generous for real clients (extensions are almost never sent, trailers rarely),
    /// small enough that validating them is cheap.
    fn default() -> Self {
        Self { max_chunk_ext: 4096, max_trailer_section: 16 * 1024 }
    }
}

/// Why a chunked body was rejected. Every variant means the message framing cannot be
/// trusted; the connection must not be reused after it.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkedError {
    /// A chunk line did not start with a hex digit: empty line, leading whitespace, a
    /// sign, or any other byte (RFC 9112 §7.1: `chunk-size = 1*HEXDIG`).
    #[error("chunk line does not start with a hex digit")]
    MissingChunkSize,
    /// The chunk-size has more than 16 significant hex digits, so it does not fit in a
    /// u64 (RFC 9112 §7.1 asks recipients to guard against this overflow).
    #[error("chunk size does not fit in 64 bits")]
    ChunkSizeOverflow,
    /// The chunk-size was followed by something other than a chunk-ext or CRLF
    /// (for example `0x10`, `1g`, or whitespace before the CRLF).
    #[error("invalid byte after chunk size")]
    InvalidChunkSize,
    /// The chunk-ext is not `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`.
    #[error("malformed chunk extension")]
    InvalidChunkExt,
    /// The chunk-ext of one line is longer than [`ChunkedLimits::max_chunk_ext`].
    #[error("chunk extension longer than the limit")]
    ChunkExtTooLong,
    /// An LF was found where a line had to end in CRLF.
    #[error("bare LF where CRLF is required")]
    BareLf,
    /// A CR was not followed by LF.
    #[error("CR not followed by LF")]
    BareCr,
    /// The chunk data was not followed by CRLF (the chunk was longer than its size).
    #[error("chunk data not followed by CRLF")]
    MissingDataCrlf,
    /// A trailer line began with whitespace: obsolete line folding (RFC 9112 §5.2).
    #[error("obsolete line folding in trailer section")]
    ObsFold,
    /// A trailer field name is empty or contains a byte that is not a tchar.
    #[error("invalid trailer field name")]
    InvalidTrailerName,
    /// Whitespace between a trailer field name and its colon (RFC 9112 §5.1).
    #[error("whitespace before colon in trailer field")]
    TrailerWhitespaceBeforeColon,
    /// A trailer line ended before any colon.
    #[error("trailer field line without a colon")]
    TrailerMissingColon,
    /// A trailer field value contains a control byte other than HTAB, or a NUL.
    #[error("invalid byte in trailer field value")]
    InvalidTrailerValue,
    /// The trailer section is longer than [`ChunkedLimits::max_trailer_section`].
    #[error("trailer section longer than the limit")]
    TrailerSectionTooLarge,
}

/// Where the decoder is inside the message. Each state names what the next byte may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First byte of a chunk line: must be a hex digit.
    SizeStart,
    /// Inside the chunk-size; `significant` counts digits after leading zeros.
    Size { significant: u8 },
    /// Whitespace after the chunk-size: only `;` (or more whitespace) may follow.
    SizeBws,
    /// After `;`: optional whitespace, then an extension name.
    ExtNameStart,
    /// Inside an extension name.
    ExtName,
    /// Whitespace after an extension name: `=` or `;` must follow.
    ExtNameBws,
    /// After `=`: optional whitespace, then a token or a quoted-string.
    ExtValueStart,
    /// Inside a token value.
    ExtToken,
    /// Inside a quoted-string value.
    ExtQuoted,
    /// Right after a backslash inside a quoted-string.
    ExtQuotedEscape,
    /// Right after the closing quote of a value: `;`, whitespace or CR.
    ExtValueEnd,
    /// Whitespace after a value: only `;` (or more whitespace) may follow.
    ExtValueBws,
    /// CR of a chunk line seen, LF expected.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Chunk data complete, CR expected.
    DataCr,
    /// CR after chunk data seen, LF expected.
    DataLf,
    /// Start of a trailer line: a field name or the CR of the final empty line.
    TrailerLineStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value (after the colon).
    TrailerValue,
    /// CR of a trailer field line seen, LF expected.
    TrailerLineLf,
    /// CR of the final empty line seen, LF expected.
    EndLf,
    /// The message is complete.
    Done,
    /// An error was returned; it is returned again on every later call.
    Failed(ChunkedError),
}

/// A streaming, strict decoder for one chunked message body. See the module docs.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    limits: ChunkedLimits,
    state: State,
    /// The chunk-size being parsed, then the data bytes left in the current chunk.
    remaining: u64,
    /// Bytes of chunk-ext seen on the current line.
    ext_len: usize,
    /// Bytes of trailer field lines seen so far.
    trailer_len: usize,
    /// Payload bytes delivered so far.
    payload: u64,
}

impl ChunkedDecoder {
    /// A decoder positioned at the start of a chunked body.
    pub fn new(limits: ChunkedLimits) -> Self {
        Self { limits, state: State::SizeStart, remaining: 0, ext_len: 0, trailer_len: 0, payload: 0 }
    }

    /// Whether the last-chunk and the whole trailer section have been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Payload (decoded) bytes delivered so far, for body-size limits.
    pub fn payload_len(&self) -> u64 {
        self.payload
    }

    /// Consumes a prefix of `input`, calling `on_data(range)` for each run of payload
    /// bytes, as a range of indices into `input`, in order; ranges are never empty.
    ///
    /// Returns how many bytes were consumed: all of `input` unless the message ended
    /// inside it, in which case the bytes after its final CRLF belong to the next
    /// message and are not consumed. Once the message is done it returns `Ok(0)`.
    pub fn feed(&mut self, input: &[u8], on_data: &mut impl FnMut(Range<usize>)) -> Result<usize, ChunkedError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        match self.run(input, on_data) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    fn run(&mut self, input: &[u8], on_data: &mut impl FnMut(Range<usize>)) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                // Chunk data: pass through as one range, as much as this input holds.
                let avail = (input.len() - i) as u64;
                let take = self.remaining.min(avail) as usize;
                on_data(i..i + take);
                i += take;
                self.remaining -= take as u64;
                self.payload = self.payload.saturating_add(take as u64);
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            if self.state == State::Done {
                return Ok(i);
            }
            self.step(input[i])?;
            i += 1;
            if self.state == State::Done {
                return Ok(i);
            }
        }
        Ok(i)
    }

    /// Advances the state machine over one framing byte.
    fn step(&mut self, b: u8) -> Result<(), ChunkedError> {
        use State::*;
        self.state = match self.state {
            SizeStart => match super::hex_value(b) {
                Some(v) => {
                    self.remaining = u64::from(v);
                    self.ext_len = 0;
                    Size { significant: u8::from(v != 0) }
                }
                None => return Err(ChunkedError::MissingChunkSize),
            },
            Size { significant } => match super::hex_value(b) {
                Some(v) => {
                    let significant = if significant == 0 && v == 0 { 0 } else { significant + 1 };
                    // 16 hex digits fill a u64 exactly; a 17th significant one overflows.
                    if significant > 16 {
                        return Err(ChunkedError::ChunkSizeOverflow);
                    }
                    self.remaining = (self.remaining << 4) | u64::from(v);
                    Size { significant }
                }
                None => match b {
                    b'\r' => SizeLf,
                    b';' => self.ext_byte(ExtNameStart)?,
                    b' ' | b'\t' => self.ext_byte(SizeBws)?,
                    b'\n' => return Err(ChunkedError::BareLf),
                    _ => return Err(ChunkedError::InvalidChunkSize),
                },
            },
            SizeBws => match b {
                b' ' | b'\t' => self.ext_byte(SizeBws)?,
                b';' => self.ext_byte(ExtNameStart)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidChunkSize),
            },
            ExtNameStart => match b {
                b' ' | b'\t' => self.ext_byte(ExtNameStart)?,
                _ if is_tchar(b) => self.ext_byte(ExtName)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            ExtName => match b {
                _ if is_tchar(b) => self.ext_byte(ExtName)?,
                b'\r' => SizeLf,
                b';' => self.ext_byte(ExtNameStart)?,
                b'=' => self.ext_byte(ExtValueStart)?,
                b' ' | b'\t' => self.ext_byte(ExtNameBws)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            ExtNameBws => match b {
                b' ' | b'\t' => self.ext_byte(ExtNameBws)?,
                b';' => self.ext_byte(ExtNameStart)?,
                b'=' => self.ext_byte(ExtValueStart)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            ExtValueStart => match b {
                b' ' | b'\t' => self.ext_byte(ExtValueStart)?,
                b'"' => self.ext_byte(ExtQuoted)?,
                _ if is_tchar(b) => self.ext_byte(ExtToken)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            ExtToken => match b {
                _ if is_tchar(b) => self.ext_byte(ExtToken)?,
                b'\r' => SizeLf,
                b';' => self.ext_byte(ExtNameStart)?,
                b' ' | b'\t' => self.ext_byte(ExtValueBws)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            ExtQuoted => match b {
                b'"' => self.ext_byte(ExtValueEnd)?,
                b'\\' => self.ext_byte(ExtQuotedEscape)?,
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text (RFC 9110 §5.6.4)
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => self.ext_byte(ExtQuoted)?,
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            ExtQuotedEscape => match b {
                // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => self.ext_byte(ExtQuoted)?,
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            ExtValueEnd => match b {
                b'\r' => SizeLf,
                b';' => self.ext_byte(ExtNameStart)?,
                b' ' | b'\t' => self.ext_byte(ExtValueBws)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            ExtValueBws => match b {
                b' ' | b'\t' => self.ext_byte(ExtValueBws)?,
                b';' => self.ext_byte(ExtNameStart)?,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::InvalidChunkExt),
            },
            SizeLf => match b {
                b'\n' if self.remaining == 0 => TrailerLineStart,
                b'\n' => Data,
                _ => return Err(ChunkedError::BareCr),
            },
            DataCr => match b {
                b'\r' => DataLf,
                b'\n' => return Err(ChunkedError::BareLf),
                _ => return Err(ChunkedError::MissingDataCrlf),
            },
            DataLf => match b {
                b'\n' => SizeStart,
                _ => return Err(ChunkedError::BareCr),
            },
            TrailerLineStart => match b {
                b'\r' => EndLf,
                b'\n' => return Err(ChunkedError::BareLf),
                b' ' | b'\t' => return Err(ChunkedError::ObsFold),
                _ if is_tchar(b) => self.trailer_byte(TrailerName)?,
                _ => return Err(ChunkedError::InvalidTrailerName),
            },
            TrailerName => match b {
                _ if is_tchar(b) => self.trailer_byte(TrailerName)?,
                b':' => self.trailer_byte(TrailerValue)?,
                b' ' | b'\t' => return Err(ChunkedError::TrailerWhitespaceBeforeColon),
                b'\r' | b'\n' => return Err(ChunkedError::TrailerMissingColon),
                _ => return Err(ChunkedError::InvalidTrailerName),
            },
            TrailerValue => match b {
                b'\r' => self.trailer_byte(TrailerLineLf)?,
                b'\n' => return Err(ChunkedError::BareLf),
                // field-content: VCHAR / obs-text / SP / HTAB (RFC 9110 §5.5)
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => self.trailer_byte(TrailerValue)?,
                _ => return Err(ChunkedError::InvalidTrailerValue),
            },
            TrailerLineLf => match b {
                b'\n' => self.trailer_byte(TrailerLineStart)?,
                _ => return Err(ChunkedError::BareCr),
            },
            EndLf => match b {
                b'\n' => Done,
                _ => return Err(ChunkedError::BareCr),
            },
            // `run` never steps in these states; kept total rather than panicking.
            Data | Done => self.state,
            Failed(e) => return Err(e),
        };
        Ok(())
    }

    /// Counts one chunk-ext byte against the limit, then moves to `next`.
    fn ext_byte(&mut self, next: State) -> Result<State, ChunkedError> {
        self.ext_len += 1;
        if self.ext_len > self.limits.max_chunk_ext {
            return Err(ChunkedError::ChunkExtTooLong);
        }
        Ok(next)
    }

    /// Counts one trailer-section byte against the limit, then moves to `next`.
    fn trailer_byte(&mut self, next: State) -> Result<State, ChunkedError> {
        self.trailer_len += 1;
        if self.trailer_len > self.limits.max_trailer_section {
            return Err(ChunkedError::TrailerSectionTooLarge);
        }
        Ok(next)
    }
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~'
        | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything observable about one decode: payload bytes, consumed count or
    /// error, and whether the decoder reported completion.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        payload: Vec<u8>,
        result: Result<usize, ChunkedError>,
        done: bool,
        payload_len: u64,
    }

    /// Feeds `input` in pieces cut at `cuts` (ascending), the way a socket would.
    fn decode_pieces(input: &[u8], cuts: &[usize], limits: ChunkedLimits) -> Outcome {
        let mut dec = ChunkedDecoder::new(limits);
        let mut payload = Vec::new();
        let mut consumed = 0;
        let mut start = 0;
        let mut result = Ok(0);
        for end in cuts.iter().copied().chain(std::iter::once(input.len())) {
            let piece = &input[start..end];
            start = end;
            let mut ranges = Vec::new();
            let r = dec.feed(piece, &mut |r: Range<usize>| ranges.push(r));
            for r in ranges {
                assert!(!r.is_empty() && r.end <= piece.len(), "bad range {r:?}");
                payload.extend_from_slice(&piece[r]);
            }
            match r {
                Ok(n) => {
                    assert!(n <= piece.len());
                    consumed += n;
                    result = Ok(consumed);
                    if n < piece.len() {
                        assert!(dec.is_done(), "stopped early without being done");
                        break;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        Outcome { payload, result, done: dec.is_done(), payload_len: dec.payload_len() }
    }

    /// Decodes `input` whole, byte by byte and in every 2-way split; asserts all agree.
    fn check_splits_with(input: &[u8], limits: ChunkedLimits) -> Outcome {
        let whole = decode_pieces(input, &[], limits);
        let bytewise: Vec<usize> = (1..input.len()).collect();
        assert_eq!(
            decode_pieces(input, &bytewise, limits),
            whole,
            "byte by byte: {:?}",
            String::from_utf8_lossy(input)
        );
        for cut in 0..=input.len() {
            assert_eq!(
                decode_pieces(input, &[cut], limits),
                whole,
                "split at {cut}: {:?}",
                String::from_utf8_lossy(input)
            );
        }
        whole
    }

    fn check_splits(input: &[u8]) -> Outcome {
        check_splits_with(input, ChunkedLimits::default())
    }

    fn assert_decodes(input: &[u8], payload: &[u8]) {
        let out = check_splits(input);
        assert_eq!(out.result, Ok(input.len()), "{:?}", String::from_utf8_lossy(input));
        assert!(out.done);
        assert_eq!(out.payload, payload);
        assert_eq!(out.payload_len, payload.len() as u64);
    }

    #[test]
    fn simple_body_decodes_to_payload() {
        assert_decodes(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world");
    }

    #[test]
    fn empty_body_decodes_to_nothing() {
        assert_decodes(b"0\r\n\r\n", b"");
    }

    #[test]
    fn data_with_crlf_inside_is_payload() {
        assert_decodes(b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n");
    }

    #[test]
    fn hex_size_any_case_and_leading_zeros_accepted() {
        assert_decodes(b"0A\r\n0123456789\r\n00000\r\n\r\n", b"0123456789");
        assert_decodes(b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789");
        // More than 16 digits is fine while only 16 or fewer are significant.
        assert_decodes(b"000000000000000000000001\r\nx\r\n0\r\n\r\n", b"x");
    }

    #[test]
    fn size_of_sixteen_hex_digits_is_accepted() {
        let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
        let n = dec.feed(b"ffffffffffffffff\r\nabc", &mut |_| {}).expect("u64::MAX is a valid size");
        assert_eq!(n, 21);
        assert_eq!(dec.payload_len(), 3);
        assert!(!dec.is_done());
    }

    #[test]
    fn chunk_extensions_valid_forms_accepted() {
        let lines: [&[u8]; 12] = [
            b"1;a\r\n",
            b"1;a=b\r\n",
            b"1 ; a = b\r\n",
            b"1\t;\ta\t=\tb\r\n",
            b"1;a;b=c;d\r\n",
            b"1;a=\"\"\r\n",
            b"1;a=\"q \\\" \\\\ \t x\"\r\n",
            b"1;a=\"x\" ;b\r\n",
            b"1;a=b ;c\r\n",
            b"1;a ;b\r\n",
            b"1;a=\"\x80\xff\"\r\n",
            b"1;!#$%&'*+-.^_`|~09AZaz=!#$%&'*+-.^_`|~09AZaz\r\n",
        ];
        for line in lines {
            let mut body = line.to_vec();
            body.extend_from_slice(b"x\r\n0;last=\"yes\"\r\n\r\n");
            assert_decodes(&body, b"x");
        }
    }

    #[test]
    fn trailer_section_valid_fields_accepted() {
        assert_decodes(b"1\r\nx\r\n0\r\nExpires: never\r\nx-sum:\t 12 \t\r\nEmpty:\r\nObs: \x80\xff\r\n\r\n", b"x");
    }

    #[test]
    fn bytes_after_end_are_not_consumed() {
        let out = check_splits(b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n");
        assert_eq!(out.result, Ok(11));
        assert!(out.done);
        assert_eq!(out.payload, b"x");
    }

    #[test]
    fn feed_after_done_consumes_nothing() {
        let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
        assert_eq!(dec.feed(b"0\r\n\r\n", &mut |_| {}), Ok(5));
        assert_eq!(dec.feed(b"0\r\n\r\n", &mut |_| panic!("no data")), Ok(0));
        assert!(dec.is_done());
    }

    #[test]
    fn incomplete_body_consumes_all_and_is_not_done() {
        let out = check_splits(b"5\r\nhel");
        assert_eq!(out.result, Ok(6));
        assert!(!out.done);
        assert_eq!(out.payload, b"hel");
    }

    #[test]
    fn error_is_sticky_on_later_feeds() {
        let mut dec = ChunkedDecoder::new(ChunkedLimits::default());
        assert_eq!(dec.feed(b"g", &mut |_| {}), Err(ChunkedError::MissingChunkSize));
        assert_eq!(dec.feed(b"0\r\n\r\n", &mut |_| {}), Err(ChunkedError::MissingChunkSize));
        assert!(!dec.is_done());
    }

    #[test]
    fn limits_exactly_reached_are_accepted() {
        let limits = ChunkedLimits { max_chunk_ext: 4, max_trailer_section: 6 };
        // chunk-ext ";a=b" is 4 bytes; trailer line "a:bc\r\n" is 6 bytes.
        let input = b"1;a=b\r\nx\r\n0\r\na:bc\r\n\r\n";
        let out = check_splits_with(input, limits);
        assert_eq!(out.result, Ok(input.len()));
        assert!(out.done);
    }

    #[test]
    fn zero_limits_forbid_extensions_and_trailers() {
        let limits = ChunkedLimits { max_chunk_ext: 0, max_trailer_section: 0 };
        assert_eq!(check_splits_with(b"0\r\n\r\n", limits).result, Ok(5), "a plain body needs neither");
        assert_eq!(check_splits_with(b"1;a\r\nx\r\n0\r\n\r\n", limits).result, Err(ChunkedError::ChunkExtTooLong));
        assert_eq!(check_splits_with(b"0\r\na:b\r\n\r\n", limits).result, Err(ChunkedError::TrailerSectionTooLarge));
    }

    const ALL_ERRORS: [ChunkedError; 14] = [
        ChunkedError::MissingChunkSize,
        ChunkedError::ChunkSizeOverflow,
        ChunkedError::InvalidChunkSize,
        ChunkedError::InvalidChunkExt,
        ChunkedError::ChunkExtTooLong,
        ChunkedError::BareLf,
        ChunkedError::BareCr,
        ChunkedError::MissingDataCrlf,
        ChunkedError::ObsFold,
        ChunkedError::InvalidTrailerName,
        ChunkedError::TrailerWhitespaceBeforeColon,
        ChunkedError::TrailerMissingColon,
        ChunkedError::InvalidTrailerValue,
        ChunkedError::TrailerSectionTooLarge,
    ];

    /// Keeps `ALL_ERRORS` in step with the enum: a new variant fails to compile here.
    fn error_index(e: ChunkedError) -> usize {
        use ChunkedError::*;
        match e {
            MissingChunkSize => 0,
            ChunkSizeOverflow => 1,
            InvalidChunkSize => 2,
            InvalidChunkExt => 3,
            ChunkExtTooLong => 4,
            BareLf => 5,
            BareCr => 6,
            MissingDataCrlf => 7,
            ObsFold => 8,
            InvalidTrailerName => 9,
            TrailerWhitespaceBeforeColon => 10,
            TrailerMissingColon => 11,
            InvalidTrailerValue => 12,
            TrailerSectionTooLarge => 13,
        }
    }

    #[test]
    fn malformed_bodies_each_error_variant_returned() {
        use ChunkedError::*;
        let small = ChunkedLimits { max_chunk_ext: 8, max_trailer_section: 16 };
        let cases: &[(&[u8], ChunkedError, ChunkedLimits)] = &[
            (b"\r\n", MissingChunkSize, ChunkedLimits::default()),
            (b" 1\r\nx\r\n0\r\n\r\n", MissingChunkSize, ChunkedLimits::default()),
            (b"-1\r\n", MissingChunkSize, ChunkedLimits::default()),
            (b"+1\r\n", MissingChunkSize, ChunkedLimits::default()),
            (b";a\r\n", MissingChunkSize, ChunkedLimits::default()),
            (b"1\r\nx\r\nz\r\n", MissingChunkSize, ChunkedLimits::default()),
            (b"10000000000000000\r\n", ChunkSizeOverflow, ChunkedLimits::default()),
            (b"00ffffffffffffffff0\r\n", ChunkSizeOverflow, ChunkedLimits::default()),
            (b"0x1\r\n", InvalidChunkSize, ChunkedLimits::default()),
            (b"1g\r\n", InvalidChunkSize, ChunkedLimits::default()),
            (b"1 \r\nx\r\n0\r\n\r\n", InvalidChunkSize, ChunkedLimits::default()),
            (b"1\t\r\n", InvalidChunkSize, ChunkedLimits::default()),
            (b"1 x\r\n", InvalidChunkSize, ChunkedLimits::default()),
            (b"1;\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;=v\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a=\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a \r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a=b \r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a b\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a=b c\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a=\"x\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a=\"x\"y\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a@\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a=\"\\\x01\"\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;a=\"\x7f\"\r\n", InvalidChunkExt, ChunkedLimits::default()),
            (b"1;abcdefghi\r\n", ChunkExtTooLong, small),
            (b"1 ; a = b ;\r\n", ChunkExtTooLong, small),
            (b"1\n", BareLf, ChunkedLimits::default()),
            (b"1;a\n", BareLf, ChunkedLimits::default()),
            (b"1;a=\"x\"\n", BareLf, ChunkedLimits::default()),
            (b"1\r\nx\n", BareLf, ChunkedLimits::default()),
            (b"0\r\n\n", BareLf, ChunkedLimits::default()),
            (b"0\r\na:b\n", BareLf, ChunkedLimits::default()),
            (b"1\rx", BareCr, ChunkedLimits::default()),
            (b"1\r\r\n", BareCr, ChunkedLimits::default()),
            (b"1\r\nx\rx", BareCr, ChunkedLimits::default()),
            (b"0\r\n\rx", BareCr, ChunkedLimits::default()),
            (b"0\r\na:b\rx", BareCr, ChunkedLimits::default()),
            (b"1\r\nxy\r\n", MissingDataCrlf, ChunkedLimits::default()),
            (b"0\r\na:b\r\n c\r\n\r\n", ObsFold, ChunkedLimits::default()),
            (b"0\r\n\tc\r\n\r\n", ObsFold, ChunkedLimits::default()),
            (b"0\r\n:b\r\n\r\n", InvalidTrailerName, ChunkedLimits::default()),
            (b"0\r\na(b:c\r\n\r\n", InvalidTrailerName, ChunkedLimits::default()),
            (b"0\r\na :b\r\n\r\n", TrailerWhitespaceBeforeColon, ChunkedLimits::default()),
            (b"0\r\nab\r\n\r\n", TrailerMissingColon, ChunkedLimits::default()),
            (b"0\r\nab\n", TrailerMissingColon, ChunkedLimits::default()),
            (b"0\r\na:b\x00c\r\n\r\n", InvalidTrailerValue, ChunkedLimits::default()),
            (b"0\r\na:\x7f\r\n\r\n", InvalidTrailerValue, ChunkedLimits::default()),
            (b"0\r\nabcdef:ghijklmnop\r\n\r\n", TrailerSectionTooLarge, small),
            (b"0\r\nab:c\r\nde:f\r\ngh:i\r\n\r\n", TrailerSectionTooLarge, small),
        ];
        let mut seen = [false; ALL_ERRORS.len()];
        for (input, want, limits) in cases {
            let out = check_splits_with(input, *limits);
            assert_eq!(out.result, Err(*want), "input {:?}", String::from_utf8_lossy(input));
            assert!(!out.done);
            seen[error_index(*want)] = true;
        }
        for e in ALL_ERRORS {
            assert!(seen[error_index(e)], "no test case for {e:?}");
        }
    }

    #[test]
    fn error_display_is_nonempty_for_every_variant() {
        for e in ALL_ERRORS {
            assert!(!e.to_string().is_empty());
        }
    }

    use crate::testing::Rng;

    const TCHARS: &[u8] = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

    fn push_token(rng: &mut Rng, out: &mut Vec<u8>) {
        for _ in 0..=rng.below(6) {
            out.push(rng.pick(TCHARS));
        }
    }

    fn push_bws(rng: &mut Rng, out: &mut Vec<u8>) {
        if rng.chance(4) {
            for _ in 0..=rng.below(2) {
                out.push(rng.pick(b" \t"));
            }
        }
    }

    fn push_size(rng: &mut Rng, out: &mut Vec<u8>, size: usize) {
        for _ in 0..rng.below(3) {
            out.push(b'0');
        }
        let hex = if rng.chance(2) { format!("{size:x}") } else { format!("{size:X}") };
        out.extend_from_slice(hex.as_bytes());
    }

    fn push_exts(rng: &mut Rng, out: &mut Vec<u8>) {
        if !rng.chance(3) {
            return;
        }
        for _ in 0..=rng.below(3) {
            push_bws(rng, out);
            out.push(b';');
            push_bws(rng, out);
            push_token(rng, out);
            if rng.chance(2) {
                push_bws(rng, out);
                out.push(b'=');
                push_bws(rng, out);
                if rng.chance(2) {
                    push_token(rng, out);
                } else {
                    out.push(b'"');
                    for _ in 0..rng.below(8) {
                        match rng.below(4) {
                            0 => out.extend_from_slice(&[b'\\', rng.pick(b"\"\\ \tq\x80")]),
                            _ => out.push(rng.pick(b" \tabc!#[]~\x80\xfe")),
                        }
                    }
                    out.push(b'"');
                }
            }
        }
    }

    /// A random valid chunked body and the payload it carries.
    fn valid_body(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
        let mut wire = Vec::new();
        let mut payload = Vec::new();
        for _ in 0..rng.below(6) {
            let size = if rng.chance(8) { 1 + rng.below(300) } else { 1 + rng.below(20) };
            push_size(rng, &mut wire, size);
            push_exts(rng, &mut wire);
            wire.extend_from_slice(b"\r\n");
            for _ in 0..size {
                let b = if rng.chance(4) { rng.pick(b"\r\n0;:") } else { rng.next() as u8 };
                payload.push(b);
                wire.push(b);
            }
            wire.extend_from_slice(b"\r\n");
        }
        push_size(rng, &mut wire, 0);
        push_exts(rng, &mut wire);
        wire.extend_from_slice(b"\r\n");
        for _ in 0..rng.below(3) {
            push_token(rng, &mut wire);
            wire.push(b':');
            for _ in 0..rng.below(10) {
                wire.push(rng.pick(b" \tvalue!~\x80\xff"));
            }
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        (wire, payload)
    }

    fn random_cuts(rng: &mut Rng, len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }

    #[test]
    fn random_valid_bodies_decode_to_their_payload() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let limits = ChunkedLimits::default();
        for _ in 0..400 {
            let (mut wire, payload) = valid_body(&mut rng);
            let len = wire.len();
            wire.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let whole = decode_pieces(&wire, &[], limits);
            assert_eq!(whole.result, Ok(len), "{:?}", String::from_utf8_lossy(&wire));
            assert!(whole.done);
            assert_eq!(whole.payload, payload);
            let bytewise: Vec<usize> = (1..wire.len()).collect();
            assert_eq!(decode_pieces(&wire, &bytewise, limits), whole);
            for _ in 0..4 {
                let cuts = random_cuts(&mut rng, wire.len());
                assert_eq!(decode_pieces(&wire, &cuts, limits), whole, "cuts {cuts:?}");
            }
        }
    }

    #[test]
    fn random_garbage_never_panics_and_is_split_invariant() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let limits = ChunkedLimits { max_chunk_ext: 16, max_trailer_section: 32 };
        let alphabet = b"0123456789abcdefABCDEFgx;=\" \t\r\n\\:\x00\x7f\x80";
        for _ in 0..3000 {
            let len = rng.below(48);
            let input: Vec<u8> =
                (0..len).map(|_| if rng.chance(8) { rng.next() as u8 } else { rng.pick(alphabet) }).collect();
            let whole = decode_pieces(&input, &[], limits);
            let bytewise: Vec<usize> = (1..input.len()).collect();
            assert_eq!(decode_pieces(&input, &bytewise, limits), whole);
            let cuts = random_cuts(&mut rng, input.len());
            assert_eq!(decode_pieces(&input, &cuts, limits), whole);
        }
    }

    #[test]
    fn mutated_valid_bodies_never_panic_and_are_split_invariant() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let limits = ChunkedLimits::default();
        for _ in 0..600 {
            let (mut wire, _) = valid_body(&mut rng);
            let at = rng.below(wire.len());
            match rng.below(3) {
                0 => wire[at] = rng.next() as u8,
                1 => wire.insert(at, rng.pick(b"\r\n ;0\"")),
                _ => {
                    wire.remove(at);
                }
            }
            let whole = decode_pieces(&wire, &[], limits);
            if let Ok(n) = whole.result {
                assert!(n <= wire.len());
            }
            let bytewise: Vec<usize> = (1..wire.len()).collect();
            assert_eq!(decode_pieces(&wire, &bytewise, limits), whole);
            let cuts = random_cuts(&mut rng, wire.len());
            assert_eq!(decode_pieces(&wire, &cuts, limits), whole);
        }
    }
}
