//! Chunked transfer coding (RFC 9112 §7.1). (Contract stub: filled in by the codec work.)
