//! A connection's byte stream, plain TCP or TLS over TCP, behind one type.
//!
//! Place in the request path: every read and write of a downstream or upstream
//! connection goes through [`Stream`]. The plain arm forwards to monoio's `TcpStream`
//! (io_uring owned-buffer operations, unchanged); the TLS arm is monoio-rustls, which
//! encrypts into its own buffer and writes whole records before a write returns.
//!
//! Cost: one match per operation. The TLS arm's stream is boxed so the plain arm stays
//! small, and so are its read and write futures (one allocation per TLS read or write).

use std::io;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use monoio::net::TcpStream;
use monoio::BufResult;

/// A connection's stream.
pub enum Stream {
    Plain(TcpStream),
    /// A downstream that connected to a TLS listener.
    TlsServer(Box<monoio_rustls::ServerTlsStream<TcpStream>>),
    /// An upstream of an `https` service.
    TlsClient(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        !matches!(self, Stream::Plain(_))
    }
}

/// Runs the same expression on whichever stream is inside.
macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Plain($s) => $e,
            Stream::TlsServer($s) => $e,
            Stream::TlsClient($s) => $e,
        }
    };
}

impl AsyncReadRent for Stream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        // A TLS read's future is about six times a plain one's (~700 bytes against
        // ~120). Unboxed, it would size this future, every future awaiting it, and the
        // copy made at each of those awaits on the plain path too.
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::TlsServer(s) => Box::pin(s.read(buf)).await,
            Stream::TlsClient(s) => Box::pin(s.read(buf)).await,
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        each!(self, s => s.readv(buf).await)
    }
}

impl AsyncWriteRent for Stream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        // Boxed TLS arm: see `read`.
        match self {
            Stream::Plain(s) => s.write(buf).await,
            Stream::TlsServer(s) => Box::pin(s.write(buf)).await,
            Stream::TlsClient(s) => Box::pin(s.write(buf)).await,
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        each!(self, s => s.writev(buf).await)
    }

    async fn flush(&mut self) -> io::Result<()> {
        each!(self, s => s.flush().await)
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        each!(self, s => s.shutdown().await)
    }
}
