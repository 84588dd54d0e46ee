//! Test payloads that `rvbuild flash` verifies before it sends them: a kernel `Image` header
//! (RISC-V or ARM64) in front of a pseudo-random pattern, and a FIT whose nodes name the arch.
//! Flash refuses files that carry no checkable code, so the byte-exact transfer tests flash
//! these rather than bare random bytes.

use super::pty;

/// `len` pseudo-random bytes (as `pty::data`) whose first 64 are a kernel Image header for `arch`
/// (`riscv64` or `aarch64`).
pub fn kernel_image(arch: &str, len: usize, seed: u32) -> Vec<u8> {
    let mut d = pty::data(len.max(64), seed);
    d[..64].fill(0);
    d[16..24].copy_from_slice(&(len as u64).to_le_bytes());
    match arch {
        "aarch64" => d[56..60].copy_from_slice(b"ARM\x64"),
        _ => d[56..60].copy_from_slice(b"RSC\x05"),
    }
    d.truncate(len.max(64));
    d
}

/// A node to write: depth, name, properties.
pub type Node<'a> = (usize, &'a str, Vec<(&'a str, Vec<u8>)>);

/// A flattened device tree: (depth, node name, properties) in document order.
pub fn fdt(tree: &[Node<'_>]) -> Vec<u8> {
    let (mut strings, mut st) = (Vec::new(), Vec::new());
    let pad = |v: &mut Vec<u8>| v.resize(v.len().div_ceil(4) * 4, 0);
    let mut depth = 0;
    for (d, name, props) in tree {
        while depth > *d {
            st.extend_from_slice(&2u32.to_be_bytes());
            depth -= 1;
        }
        st.extend_from_slice(&1u32.to_be_bytes());
        st.extend_from_slice(name.as_bytes());
        st.push(0);
        pad(&mut st);
        depth += 1;
        for (p, v) in props {
            st.extend_from_slice(&3u32.to_be_bytes());
            st.extend_from_slice(&(v.len() as u32).to_be_bytes());
            st.extend_from_slice(&(strings.len() as u32).to_be_bytes());
            strings.extend_from_slice(p.as_bytes());
            strings.push(0);
            st.extend_from_slice(v);
            pad(&mut st);
        }
    }
    for _ in 0..depth {
        st.extend_from_slice(&2u32.to_be_bytes());
    }
    st.extend_from_slice(&9u32.to_be_bytes());
    let (off_st, off_str) = (56, 56 + st.len());
    let mut b = Vec::new();
    for v in [0xd00d_feed, off_str + strings.len(), off_st, off_str, 40, 17, 16, 0, strings.len(), st.len()] {
        b.extend_from_slice(&(v as u32).to_be_bytes());
    }
    b.resize(56, 0);
    b.extend_from_slice(&st);
    b.extend_from_slice(&strings);
    b
}

/// A NUL-terminated string property value.
pub fn s(v: &str) -> Vec<u8> {
    format!("{v}\0").into_bytes()
}

/// A FIT with one `standalone` node of `arch` (a FIT arch name: `riscv`, `arm64`) carrying
/// `payload`.
pub fn fit(arch: &str, payload: &[u8]) -> Vec<u8> {
    fdt(&[
        (0, "", vec![("description", s("test FIT"))]),
        (1, "images", vec![]),
        (
            2,
            "uboot",
            vec![("type", s("standalone")), ("arch", s(arch)), ("compression", s("none")), ("data", payload.to_vec())],
        ),
        (1, "configurations", vec![]),
    ])
}
