//! A TCP stream that closes gracefully (a "lingering close", as nginx and Apache do).
//!
//! When the server answers before reading the whole request (413 for a body over the limit),
//! hyper closes the connection with the rest of the body unread. Closing a socket with unread
//! bytes makes the kernel send a reset, and the client's kernel may drop the answer it already
//! received when the reset arrives: the client sees a broken connection instead of the 413.
//! Here a shutdown first closes the write side (the answer goes out, then a FIN), then reads and
//! drops what the client still sends until it closes too, for at most `linger`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// A [`TcpStream`] whose shutdown lingers; see the module documentation.
pub(crate) struct Lingering {
    tcp: TcpStream,
    linger: Duration,
    /// Set once the write side is shut: until when unread input is drained.
    draining: Option<Pin<Box<Sleep>>>,
}

impl Lingering {
    /// Wraps `tcp`; a shutdown drains the client's input for at most `linger`.
    pub(crate) fn new(tcp: TcpStream, linger: Duration) -> Lingering {
        Lingering {
            tcp,
            linger,
            draining: None,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    // Vectored writes pass through, so hyper keeps writing headers and body without copying
    // them into one buffer first.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.draining.is_none() {
            ready!(Pin::new(&mut this.tcp).poll_shutdown(cx))?;
            this.draining = Some(Box::pin(tokio::time::sleep(this.linger)));
        }
        let deadline = this.draining.as_mut().expect("set above");
        let mut scratch = [0u8; 16 * 1024];
        loop {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.tcp).poll_read(cx, &mut read) {
                // The client closed its side too (or the connection broke): done.
                Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
