//! Reading HTTP/1.1 messages off a socket, for the test servers and the fault proxy.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Reads one whole HTTP/1.1 message (head and body, by `content-length` or chunked) from
/// `stream`, keeping any bytes past its end in `buffer` for the next one. `None` at a clean
/// end of stream.
pub async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(length) = complete_message_length(buffer)? {
            return Ok(Some(buffer.drain(..length).collect()));
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// The length of the first message in `bytes` if it is all there.
fn complete_message_length(bytes: &[u8]) -> std::io::Result<Option<usize>> {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let body_start = head_end + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Ok(chunked_end(bytes, body_start));
    }
    let length = match header("content-length") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| std::io::Error::other("bad content-length"))?,
        None => 0,
    };
    Ok((bytes.len() >= body_start + length).then_some(body_start + length))
}

/// Where a chunked body that starts at `at` ends, if it is complete (no trailers expected).
fn chunked_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let line_end = at + bytes[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&bytes[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            return (bytes.len() >= at + 2).then_some(at + 2);
        }
        at += size + 2;
        if bytes.len() < at {
            return None;
        }
    }
}
