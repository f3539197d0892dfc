//! Differential tests of the sans-IO codecs against the reference JavaScript parsers, run under
//! Node.js: `socket.io-parser` 4.2.7, `engine.io-parser` 5.2.3 (Engine.IO v4) and the v3 parser
//! shipped in `engine.io` 6.6.12.
//!
//! Every case is decoded (or encoded) by both sides and the results are compared: error against
//! success, the error kind where Ferrio's errors correspond to the reference's messages, and for
//! successes the packet type, namespace, ack id and data (compared as JSON values, numbers as
//! IEEE doubles, binary data as base64).
//!
//! A few differences are deliberate (Ferrio is stricter than the reference, see
//! [`Deviation`]); they are recognised precisely and counted apart, and the cases in
//! [`known_differences`] must keep showing them. Any other difference fails the test.
//!
//! Run `npm ci` in `tests/node` first.

mod differential;

use differential::*;

#[test]
fn ferrio_decodes_as_the_reference_parsers() {
    let mut cases = Vec::new();
    cases.extend(section_6_2_cases());
    cases.extend(section_1_cases());
    cases.extend(extra_cases());
    let known = known_differences();
    let known_labels: Vec<String> = known.iter().map(|c| c.label.clone()).collect();
    cases.extend(known);
    cases.extend(generated_cases(0x5EED_F0E5_2024_0001, 400, 150, 150, 120));
    cases.extend(encode_cases());

    let report = run_cases(&cases);
    report.print();

    let mut problems = report.mismatches.clone();
    for label in &known_labels {
        match report.outcome(label) {
            Some(Outcome::Deviation(_)) => {}
            other => problems.push(format!(
                "{label}: listed as a known difference but classified as {other:?}; \
                 remove it from known_differences() if the codecs now agree"
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "{} disagreement(s) with the reference parsers:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn v3_binary_payload_bytes_match_node() {
    // A `message` packet whose data is Buffer <01 02 03>, batched by encodePayloadAsBinary:
    // marker 01 (binary), length 4 as the single byte 04 (type byte + 3 data bytes), FF, then the
    // packet type byte 04 (message) followed by the data.
    let expected: &[u8] = &[0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03];
    let packets = vec![engine_bin_packet("message", &[1, 2, 3])];
    let js = node_encode_v3_binary(&packets);
    assert_eq!(js, expected, "Node's encodePayloadAsBinary");
    let ours = ours_encode_v3_binary(&packets);
    assert_eq!(ours, expected, "encode_payload_v3_binary");
}
