//! Wire primitives of Nix's serve protocol over tokio streams: u64 little-endian integers,
//! booleans, and length-prefixed strings padded with zeros to 8 bytes, with size limits on
//! everything read so a broken peer cannot make rvbuild allocate without bound.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest string accepted by [`read_string`] unless a caller says otherwise (error messages,
/// JSON realisations).
pub const MAX_STRING: usize = 16 * 1024 * 1024;
/// Longest store path string read.
pub const MAX_PATH: usize = 4096;
/// Most elements in a list read.
pub const MAX_LIST: u64 = 1 << 20;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

pub async fn write_u64<W: AsyncWrite + Unpin>(w: &mut W, v: u64) -> io::Result<()> {
    w.write_all(&v.to_le_bytes()).await
}

pub async fn write_bool<W: AsyncWrite + Unpin>(w: &mut W, v: bool) -> io::Result<()> {
    write_u64(w, u64::from(v)).await
}

pub async fn write_bytes<W: AsyncWrite + Unpin>(w: &mut W, b: &[u8]) -> io::Result<()> {
    write_u64(w, b.len() as u64).await?;
    w.write_all(b).await?;
    write_padding(w, b.len() as u64).await
}

pub async fn write_padding<W: AsyncWrite + Unpin>(w: &mut W, len: u64) -> io::Result<()> {
    let pad = ((8 - len % 8) % 8) as usize;
    w.write_all(&[0u8; 8][..pad]).await
}

pub async fn write_strings<W, I, S>(w: &mut W, items: I) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    I: IntoIterator<Item = S>,
    I::IntoIter: ExactSizeIterator,
    S: AsRef<str>,
{
    let items = items.into_iter();
    write_u64(w, items.len() as u64).await?;
    for s in items {
        write_bytes(w, s.as_ref().as_bytes()).await?;
    }
    Ok(())
}

pub async fn read_u64<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).await?;
    Ok(u64::from_le_bytes(b))
}

pub async fn read_bool<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<bool> {
    match read_u64(r).await? {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(invalid(format!("expected a boolean (0 or 1), got {n}"))),
    }
}

pub async fn read_padding<R: AsyncRead + Unpin>(r: &mut R, len: u64) -> io::Result<()> {
    let pad = ((8 - len % 8) % 8) as usize;
    let mut b = [0u8; 8];
    r.read_exact(&mut b[..pad]).await?;
    if b.iter().any(|&x| x != 0) {
        return Err(invalid("non-zero padding after a string".into()));
    }
    Ok(())
}

pub async fn read_bytes<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> io::Result<Vec<u8>> {
    let len = read_u64(r).await?;
    if len > max as u64 {
        return Err(invalid(format!("a string of {len} bytes is longer than the limit of {max}")));
    }
    let mut v = vec![0u8; len as usize];
    r.read_exact(&mut v).await?;
    read_padding(r, len).await?;
    Ok(v)
}

pub async fn read_string<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> io::Result<String> {
    let b = read_bytes(r, max).await?;
    String::from_utf8(b).map_err(|e| invalid(format!("a string is not UTF-8: {e}")))
}

pub async fn read_strings<R: AsyncRead + Unpin>(r: &mut R, max_len: usize) -> io::Result<Vec<String>> {
    let n = read_u64(r).await?;
    if n > MAX_LIST {
        return Err(invalid(format!("a list of {n} elements is longer than the limit of {MAX_LIST}")));
    }
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(read_string(r, max_len).await?);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn string_encoding_matches_reference() {
        let mut out = Vec::new();
        write_bytes(&mut out, b"hi").await.expect("write");
        assert_eq!(out, [2, 0, 0, 0, 0, 0, 0, 0, b'h', b'i', 0, 0, 0, 0, 0, 0]);
        assert_eq!(read_string(&mut out.as_slice(), 10).await.expect("read"), "hi");
    }

    #[tokio::test]
    async fn rejects_bad_data() {
        let mut bad_pad = Vec::new();
        write_bytes(&mut bad_pad, b"hi").await.expect("write");
        bad_pad[15] = 1;
        assert!(read_string(&mut bad_pad.as_slice(), 10).await.is_err());
        let long = 1000u64.to_le_bytes();
        assert!(read_bytes(&mut long.as_slice(), 10).await.is_err());
        let two = 2u64.to_le_bytes();
        assert!(read_bool(&mut two.as_slice()).await.is_err());
        let many = u64::MAX.to_le_bytes();
        assert!(read_strings(&mut many.as_slice(), 10).await.is_err());
        let eof: &[u8] = &[1, 0, 0];
        assert_eq!(read_u64(&mut &eof[..]).await.expect_err("eof").kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn lists_round_trip() {
        let mut out = Vec::new();
        write_strings(&mut out, ["a", "bcdefghij", ""]).await.expect("write");
        write_bool(&mut out, true).await.expect("write");
        let mut r = out.as_slice();
        assert_eq!(read_strings(&mut r, 100).await.expect("read"), ["a", "bcdefghij", ""]);
        assert!(read_bool(&mut r).await.expect("bool"));
        assert!(r.is_empty());
    }
}
