//! Agent names people can tell apart: members choose them, so a name must not impersonate
//! another. A name is refused when it contains bidirectional controls or invisible (zero-width,
//! default-ignorable) characters, when it is not in Unicode NFKC form, when it mixes scripts
//! (Latin with Cyrillic look-alikes, say), or when its confusable skeleton (UTS #39) equals that
//! of an existing name in the organization. The skeleton of the lowercased name is stored in
//! `agents.name_key`.

use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, MixedScript};

use crate::error::{Error, Result};

/// Bidirectional formatting characters (UAX #9): they reorder how a name is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that display as nothing: zero-width spaces and joiners, word joiners, the BOM,
/// soft hyphens, variation selectors, tags and the other default-ignorable code points.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Checks that `name` (already trimmed and length-checked) is safe to show to people, and
/// returns its comparison key: the UTS #39 skeleton of its lowercase form.
pub(crate) fn name_key(name: &str) -> Result<String> {
    if let Some(c) = name.chars().find(|c| is_bidi_control(*c)) {
        return Err(Error::bad_request(format!(
            "agent names must not contain bidirectional control characters (found U+{:04X}): they change how the name is displayed",
            u32::from(c)
        )));
    }
    if let Some(c) = name.chars().find(|c| is_invisible(*c)) {
        return Err(Error::bad_request(format!(
            "agent names must not contain invisible characters (found U+{:04X}, zero-width or default-ignorable)",
            u32::from(c)
        )));
    }
    let nfkc: String = name.nfkc().collect();
    if nfkc != name {
        return Err(Error::bad_request(format!(
            "agent names must be in Unicode NFKC form; use '{nfkc}' instead"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii() && !c.identifier_allowed())
    {
        return Err(Error::bad_request(format!(
            "agent names may use letters, digits and ASCII punctuation; U+{:04X} is not allowed in identifiers (Unicode TR #39)",
            u32::from(c)
        )));
    }
    if !name.is_single_script() {
        return Err(Error::bad_request(
            "agent names must not mix scripts (for example Latin with Cyrillic look-alikes); use one script",
        ));
    }
    Ok(skeleton_key(name))
}

/// The comparison key of a name, without the checks (for names stored before they existed).
pub(crate) fn skeleton_key(name: &str) -> String {
    let lower: String = name.nfkc().collect::<String>().to_lowercase();
    unicode_security::skeleton(&lower).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_key() {
        assert_eq!(skeleton_key("paypal"), skeleton_key("PayPal"));
        assert_eq!(
            skeleton_key("trusted-bot"),
            skeleton_key("trusted-b\u{043E}t")
        );
        assert_eq!(skeleton_key("rn-agent"), skeleton_key("m-agent"));
        assert_ne!(skeleton_key("billing"), skeleton_key("shipping"));
    }

    #[test]
    fn unsafe_names_are_refused_with_the_reason() {
        let bidi = name_key("agent\u{202E}txt").unwrap_err().to_string();
        assert!(bidi.contains("bidirectional"), "{bidi}");
        let zw = name_key("trusted\u{200B}bot").unwrap_err().to_string();
        assert!(zw.contains("invisible"), "{zw}");
        let mixed = name_key("trusted-b\u{043E}t").unwrap_err().to_string();
        assert!(mixed.contains("mix scripts"), "{mixed}");
        let nfkc = name_key("\u{FB01}le-bot").unwrap_err().to_string();
        assert!(nfkc.contains("NFKC") && nfkc.contains("file-bot"), "{nfkc}");
        assert!(name_key("support-bot 2").is_ok());
        assert!(name_key("агент-поддержки").is_ok());
        assert!(name_key("エージェント").is_ok());
    }
}
