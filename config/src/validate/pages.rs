//! `[pages]`: the branding and template of the pages browsers get.

use proofgate_core::pages::{Branding, Pages, PagesError};

use super::Check;
use crate::file::PagesFile;

pub(super) fn pages(c: &mut Check, f: &PagesFile) -> Pages {
    let non_empty = |v: &Option<String>| v.as_ref().filter(|s| !s.trim().is_empty()).cloned();
    let branding = Branding {
        product_name: non_empty(&f.product_name),
        logo_url: non_empty(&f.logo_url),
        support_url: non_empty(&f.support_url),
    };
    if let Some(name) = &branding.product_name {
        if name.chars().count() > 60 || name.chars().any(char::is_control) {
            c.err(
                "pages.product_name",
                "must be at most 60 characters, without control characters",
            );
        }
    }
    let built = match non_empty(&f.template_dir) {
        Some(dir) => Pages::from_dir(branding, std::path::Path::new(&dir)),
        None => Pages::new(branding),
    };
    match built {
        Ok(pages) => pages,
        Err(e) => {
            let key = match &e {
                PagesError::Branding(m) if m.starts_with("pages.logo_url") => "pages.logo_url",
                PagesError::Branding(_) => "pages.support_url",
                _ => "pages.template_dir",
            };
            let message = e.to_string();
            let message = message
                .strip_prefix(&format!("{key} "))
                .unwrap_or(&message)
                .to_owned();
            c.err(key, message);
            Pages::default()
        }
    }
}
