//! Inputs the fuzzer (fuzz/fuzz_targets/verify_bytes.rs) found to crash verify, kept so that
//! they stay fixed. Each goes through the same entry point as the fuzz target.

use rvbuild::verify::{self, Expectation, Status};

fn unhex(parts: &[&str]) -> Vec<u8> {
    let hex: String = parts.concat();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// crash-8da120f3 (fuzz target name pick 3, `mod.ko.xz`): an xz stream whose footer makes
/// lzma-rs 0.3 overflow `backward_size + 1`, a panic when overflow checks are on.
const XZ_FOOTER_OVERFLOW: &[&str] = &[
    "fd377a585a000004e6d6b4460200210116000000742fe5a3e0066f01b75d003f914584683d89a6da9ca6ddfad402a544",
    "c619622ea8d40c9900b00428cda3a9a132802b56c371c36a49e4af345ed2668835c741ee9165fa7524b81be6f39cd2e4",
    "539aaa91558aa61633ca013026dbee7fa3c7c49595956ff422728320a20166341bd6ce4a6e6372f9f346a9a97102fec2",
    "94d13c87fe36e0a1b339fe3b37843397b43f6df1ee2221db088602bcffd3064dcca2865e168a96ce0b260f9e015e692f",
    "d770ae312ad62e473dffa6b6875a75dba2ab0dae5819ac29c67bef9d689cfb43ffbc1ce7fcf473bd320bd583f6f4c1d8",
    "3b9b40ec2ddd819af5894f0bc0594be4db366ba5823b8000c222edac31148a4ab8a19e386f84b27b78986e92d14c2a69",
    "77f850c69d01b1e7fb8d112a0c155fecee592573af85e259a87be68e58dc34c825df3e7c2311af32c0f80cee15db8957",
    "f97ae120762b78ab68e3030e2c5c3cb1360b500e3d48c8b481addbbd6e77203c98fa01ca9fa4ffce8fe3787309789def",
    "8aa95f9419298afd885602fee86dc54970f544f17bf90e16d3d2c2f92a248736a68267751dac7fb0580e820c6bb03810",
    "e1e792fe1d64c75571fdc121025b9f9cf6d4129c29e68ad43edb77eb17918a2b8c7b51ef7e5c0000e9bdc795c475eabd",
    "0001d303f00c00004f2f239fb1c467fbffffffffffffff08",
];

#[test]
fn xz_footer_overflow_is_an_error_not_a_panic() {
    let bytes = unhex(XZ_FOOTER_OVERFLOW);
    assert_eq!(bytes.len(), 504);
    let exp = Expectation::parse_arch("riscv64").unwrap();
    let results = verify::verify_bytes("mod.ko.xz", &bytes, &exp);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].status, Status::Error, "{:?}", results[0]);
    assert!(results[0].reason.as_deref().unwrap().contains("xz"), "{:?}", results[0]);
}
