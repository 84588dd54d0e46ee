//! A bounded reader of a whole flattened device tree: every node with its path and properties,
//! for FIT images (`/images/*` nodes). Depth and node count are capped and every offset is
//! checked, so a hostile blob is an error, never a panic or a runaway loop.

pub(super) const FDT_BEGIN_NODE: u32 = 1;
pub(super) const FDT_END_NODE: u32 = 2;
pub(super) const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
pub(super) const FDT_END: u32 = 9;
/// Deepest node nesting accepted (real trees stay below 10).
const MAX_DEPTH: usize = 32;
/// Most nodes read.
const MAX_NODES: usize = 20_000;

/// One node: its path (`/images/uboot`) and its properties in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node<'a> {
    pub path: String,
    pub props: Vec<(&'a str, &'a [u8])>,
}

impl<'a> Node<'a> {
    pub(crate) fn prop(&self, name: &str) -> Option<&'a [u8]> {
        self.props.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// A string property (the first string of a string list).
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        let v = self.prop(name)?;
        let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
        Some(String::from_utf8_lossy(&v[..end]).into_owned())
    }

    /// A 32-bit big-endian cell property.
    pub(crate) fn u32(&self, name: &str) -> Option<u32> {
        let v = self.prop(name)?;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn cstr(b: &[u8]) -> Option<&str> {
    let end = b.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&b[..end]).ok()
}

/// The header's total size, once the magic is checked.
pub(crate) fn total_size(blob: &[u8]) -> Option<u32> {
    (blob.get(..4)? == [0xd0, 0x0d, 0xfe, 0xed]).then(|| be32(blob, 4)).flatten()
}

/// Every node of the tree in `blob`, in document order.
pub(crate) fn nodes(blob: &[u8]) -> Result<Vec<Node<'_>>, String> {
    let field = |at| be32(blob, at).ok_or_else(|| "truncated FDT header".to_string());
    if total_size(blob).is_none() {
        return Err("no FDT magic".into());
    }
    let range = |off: u32, size: u32, what: &str| {
        let (off, size) = (off as usize, size as usize);
        off.checked_add(size)
            .filter(|&end| end <= blob.len())
            .map(|end| &blob[off..end])
            .ok_or_else(|| format!("FDT {what} block ({size} bytes at {off}) lies outside the blob"))
    };
    let structure = range(field(8)?, field(36)?, "structure")?;
    let strings = range(field(12)?, field(32)?, "strings")?;
    let mut out: Vec<Node<'_>> = Vec::new();
    // Indexes into `out` of the open nodes.
    let mut open: Vec<usize> = Vec::new();
    let mut at = 0usize;
    let align = |n: usize| n.checked_add(3).map(|n| n & !3).ok_or("FDT offset overflow");
    loop {
        let token = be32(structure, at).ok_or("FDT structure block ends without FDT_END")?;
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                let rest = structure.get(at..).unwrap_or(&[]);
                let name = cstr(rest).ok_or(format!("unterminated or non-UTF-8 FDT node name at offset {at}"))?;
                at = align(at + name.len() + 1)?;
                if open.len() >= MAX_DEPTH {
                    return Err(format!("FDT nodes nested deeper than {MAX_DEPTH}"));
                }
                if out.len() >= MAX_NODES {
                    return Err(format!("FDT has more than {MAX_NODES} nodes"));
                }
                let path = match open.last() {
                    None => "/".to_string(),
                    Some(&p) if out[p].path == "/" => format!("/{name}"),
                    Some(&p) => format!("{}/{name}", out[p].path),
                };
                open.push(out.len());
                out.push(Node { path, props: Vec::new() });
            }
            FDT_PROP => {
                let len = be32(structure, at).ok_or("truncated FDT property")? as usize;
                let nameoff = be32(structure, at + 4).ok_or("truncated FDT property")? as usize;
                at += 8;
                let value = at
                    .checked_add(len)
                    .and_then(|end| structure.get(at..end))
                    .ok_or("FDT property value lies outside the structure block")?;
                let name =
                    strings.get(nameoff..).and_then(cstr).ok_or("FDT property name outside the strings block")?;
                let &node = open.last().ok_or("FDT property outside any node")?;
                out[node].props.push((name, value));
                at = align(at + len)?;
            }
            FDT_NOP => {}
            FDT_END_NODE => {
                open.pop().ok_or("FDT_END_NODE without an open node")?;
            }
            FDT_END if open.is_empty() => return Ok(out),
            FDT_END => return Err("FDT_END inside an open node".into()),
            t => return Err(format!("bad FDT structure token {t:#x} at offset {}", at - 4)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A node to write: depth, name, properties.
    pub(crate) type TestNode<'a> = (usize, &'a str, Vec<(&'a str, Vec<u8>)>);

    /// Writes a device tree: `(path depth, name, props)` in document order.
    pub(crate) fn build(tree: &[TestNode<'_>]) -> Vec<u8> {
        let mut strings: Vec<u8> = Vec::new();
        let mut st: Vec<u8> = Vec::new();
        let push = |st: &mut Vec<u8>, v: u32| st.extend_from_slice(&v.to_be_bytes());
        let pad = |st: &mut Vec<u8>| {
            while !st.len().is_multiple_of(4) {
                st.push(0);
            }
        };
        let mut depth = 0;
        for (d, name, props) in tree {
            while depth > *d {
                push(&mut st, FDT_END_NODE);
                depth -= 1;
            }
            push(&mut st, FDT_BEGIN_NODE);
            st.extend_from_slice(name.as_bytes());
            st.push(0);
            pad(&mut st);
            depth += 1;
            for (p, v) in props {
                let off = strings.len() as u32;
                strings.extend_from_slice(p.as_bytes());
                strings.push(0);
                push(&mut st, FDT_PROP);
                push(&mut st, v.len() as u32);
                push(&mut st, off);
                st.extend_from_slice(v);
                pad(&mut st);
            }
        }
        while depth > 0 {
            push(&mut st, FDT_END_NODE);
            depth -= 1;
        }
        push(&mut st, FDT_END);
        let off_struct = 40 + 16;
        let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let mut b = Vec::new();
        for v in [0xd00d_feed, total, off_struct, off_strings, 40, 17, 16, 0, strings.len(), st.len()] {
            push(&mut b, v as u32);
        }
        b.extend_from_slice(&[0u8; 16]);
        b.extend_from_slice(&st);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn paths_and_properties() {
        let blob = build(&[
            (0, "", vec![("description", b"fit\0".to_vec())]),
            (1, "images", vec![]),
            (2, "uboot", vec![("arch", b"riscv\0".to_vec()), ("load", vec![0, 0, 0, 42])]),
            (1, "configurations", vec![]),
        ]);
        let n = nodes(&blob).unwrap();
        let paths: Vec<&str> = n.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths, ["/", "/images", "/images/uboot", "/configurations"]);
        assert_eq!(n[2].text("arch").as_deref(), Some("riscv"));
        assert_eq!(n[2].u32("load"), Some(42));
    }

    #[test]
    fn hostile_trees_are_errors() {
        let deep: Vec<TestNode<'_>> = (0..40).map(|d| (d, "n", vec![])).collect();
        assert!(nodes(&build(&deep)).unwrap_err().contains("deeper"));
        let mut blob = build(&[(0, "", vec![("a", vec![1])])]);
        let n = blob.len();
        blob.truncate(n - 6);
        assert!(nodes(&blob).is_err());
        assert!(nodes(b"\xd0\x0d\xfe\xed").is_err());
    }
}
