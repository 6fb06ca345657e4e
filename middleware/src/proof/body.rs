use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// Response body of [`ProofService`](super::ProofService): the inner service's body, or the
    /// body of a rejection rendered by the core (problem+json, a page, or empty for a redirect
    /// and for a gRPC status, so that HTTP/2 sends that one as a single `HEADERS` frame ending
    /// the stream: gRPC's Trailers-Only response).
    pub struct ProofBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
        },
        Rejected {
            body: Option<Bytes>,
        },
    }
}

impl<B> ProofBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A complete body of `bytes` (a rejection).
    pub fn rejected(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Rejected {
                body: (!bytes.is_empty()).then_some(bytes),
            },
        }
    }
}

impl<B> Body for ProofBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Rejected { body } => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Rejected { body } => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Rejected { body } => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

impl<B> std::fmt::Debug for ProofBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Inner { .. } => f.write_str("ProofBody::Inner"),
            Kind::Rejected { body } => f
                .debug_struct("ProofBody::Rejected")
                .field("len", &body.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}
