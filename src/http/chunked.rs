//! Chunked transfer coding (RFC 9112 §7.1). Temporary stand-in until the decoder lands.

#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkedLimits {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    #[error("not implemented")]
    Unimplemented,
}

pub struct ChunkedDecoder {}

impl ChunkedDecoder {
    pub fn new(_l: ChunkedLimits) -> Self {
        ChunkedDecoder {}
    }
    pub fn feed(&mut self, _input: &[u8], _on_data: &mut impl FnMut(std::ops::Range<usize>)) -> Result<usize, ChunkedError> {
        Err(ChunkedError::Unimplemented)
    }
    pub fn is_done(&self) -> bool {
        false
    }
    pub fn payload_len(&self) -> u64 {
        0
    }
}
