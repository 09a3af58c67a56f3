//! DSSE v1 pre-authentication encoding (PAE):
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths as ASCII decimal.

use super::{MAX_SIGNED_BYTES, Reason, StatementError};

/// The most digits a length field may have: the digits of [`MAX_SIGNED_BYTES`] (65,536).
const MAX_LENGTH_DIGITS: usize = 5;

/// The DSSE v1 PAE of `payload_type` and `body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Splits a PAE into its payload type and body. Refuses ([`Reason::MalformedEnvelope`]) a
/// missing or differently-cased `DSSEv1 ` prefix, a length that is not canonical ASCII decimal
/// (empty, a sign, a leading zero, more than five digits, any other byte), a type length that
/// runs past the input or is not followed by a space, and a body length that is not exactly the
/// number of bytes left (too long, too short, trailing bytes).
pub fn split_pae(frame: &[u8]) -> Result<(&[u8], &[u8]), StatementError> {
    let malformed = |why: &'static str| StatementError::new(Reason::MalformedEnvelope, why);
    if frame.len() > MAX_SIGNED_BYTES {
        return Err(super::too_many_bytes());
    }
    let rest = frame
        .strip_prefix(b"DSSEv1 ")
        .ok_or_else(|| malformed("signedBytes does not start with \"DSSEv1 \""))?;
    let (type_len, rest) = cut_length(rest).ok_or_else(|| malformed("bad payload type length"))?;
    if rest.len() <= type_len || rest[type_len] != b' ' {
        return Err(malformed(
            "the payload type length does not match the payload type",
        ));
    }
    let (payload_type, rest) = (&rest[..type_len], &rest[type_len + 1..]);
    let (body_len, body) = cut_length(rest).ok_or_else(|| malformed("bad payload length"))?;
    if body_len != body.len() {
        return Err(malformed("the payload length does not match the payload"));
    }
    Ok((payload_type, body))
}

/// Reads canonical ASCII decimal digits and the space after them.
fn cut_length(b: &[u8]) -> Option<(usize, &[u8])> {
    let end = b.iter().position(|&c| c == b' ')?;
    let digits = &b[..end];
    if digits.is_empty()
        || digits.len() > MAX_LENGTH_DIGITS
        || (digits[0] == b'0' && digits.len() > 1)
        || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let n = digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    Some((n, &b[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = super::super::PAYLOAD_TYPE;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // The example in the DSSE v1 protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        let frame = pae(T, b"{}");
        assert_eq!(split_pae(&frame).unwrap(), (T.as_bytes(), &b"{}"[..]));
        assert_eq!(split_pae(b"DSSEv1 0  0 ").unwrap(), (&b""[..], &b""[..]));
    }

    #[test]
    fn lying_or_non_canonical_lengths_are_malformed() {
        let body = "{\"a\":1}";
        for frame in [
            format!("DSSEv1 46 {T} 8 {body}"),
            format!("DSSEv1 46 {T} 6 {body}"),
            format!("DSSEv1 45 {T} 7 {body}"),
            format!("DSSEv1 47 {T} 7 {body}"),
            format!("DSSEv1 046 {T} 7 {body}"),
            format!("DSSEv1 46 {T} 07 {body}"),
            format!("DSSEv1 46 {T} +7 {body}"),
            format!("DSSEv1 46 {T} 7 {body} "),
            format!("DSSEv1 46 {T} 0000007 {body}"),
            format!("DSSEv1 46 {T}  7 {body}"),
            format!("DSSEv1  46 {T} 7 {body}"),
            format!("DSSEv1 4a {T} 7 {body}"),
            format!("DSSEv1 46 {T} 7"),
            format!("DSSEv1 46 {T}"),
            format!("dssev1 46 {T} 7 {body}"),
            format!("DSSEv1 99999 {T} 7 {body}"),
            format!("DSSEv1 46 {T} 100000 {body}"),
            "DSSEv1 ".to_string(),
            String::new(),
        ] {
            assert_eq!(
                split_pae(frame.as_bytes()).unwrap_err().reason(),
                Reason::MalformedEnvelope,
                "{frame}"
            );
        }
    }
}
