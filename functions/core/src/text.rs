//! Text kept within a size limit (SNS messages, quoted input values).

/// Cuts `text` to at most `max_bytes` bytes, at a character boundary; true when it cut.
pub fn truncate_bytes(text: &mut String, max_bytes: usize) -> bool {
    if text.len() <= max_bytes {
        return false;
    }
    let end = (0..=max_bytes).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    text.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_only_what_is_over_and_never_inside_a_character() {
        let mut short = "abc".to_owned();
        assert!(!truncate_bytes(&mut short, 3));
        assert_eq!(short, "abc");
        let mut accented = "aé".to_owned(); // é is 2 bytes: a cut at 2 would split it
        assert!(truncate_bytes(&mut accented, 2));
        assert_eq!(accented, "a");
    }
}
