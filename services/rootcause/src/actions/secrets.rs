//! What becomes of automation header values (tokens): masked wherever they are shown, kept when
//! a catalogue sends the mask back (never for a changed URL), and sealed in the database
//! ([`crate::sealing`]).

use std::collections::BTreeMap;

use rootcause_models::actions::{Catalogue, CatalogueError};

use super::{MASK, checked_catalogue};
use crate::sealing::{SealError, Sealer, is_sealed};

/// Header values replaced by [`MASK`]: what the API shows of a catalogue.
pub fn masked(catalogue: &Catalogue) -> Catalogue {
    let mut shown = catalogue.clone();
    let _: Result<(), std::convert::Infallible> = each_header(&mut shown, |_, _, value| {
        *value = MASK.to_owned();
        Ok(())
    });
    shown
}

/// Calls `change` with (runbook id, header name, value) for every automation header value;
/// stops at the first error.
fn each_header<E>(
    catalogue: &mut Catalogue,
    mut change: impl FnMut(&str, &str, &mut String) -> Result<(), E>,
) -> Result<(), E> {
    for runbook in &mut catalogue.runbooks {
        if let Some(automation) = &mut runbook.automation {
            for (name, value) in automation.headers.iter_mut() {
                change(&runbook.id, name, value)?;
            }
        }
    }
    Ok(())
}

/// Puts back the stored value of every header a new catalogue sends as [`MASK`] (as `GET`
/// showed it): a responder can edit a catalogue without ever seeing its tokens. A kept secret
/// never follows a changed automation URL: pointing the URL elsewhere while keeping
/// `Authorization: "***"` would hand the stored token to the new listener, so the value must
/// then be sent again. Returns the names of the headers kept, by runbook id.
pub(super) fn unmask(
    catalogue: &mut Catalogue,
    current: &Catalogue,
) -> Result<BTreeMap<String, Vec<String>>, CatalogueError> {
    let mut kept_headers = BTreeMap::new();
    for (i, runbook) in catalogue.runbooks.iter_mut().enumerate() {
        let id = runbook.id.clone();
        let Some(automation) = &mut runbook.automation else {
            continue;
        };
        let stored = current.get(&id).and_then(|r| r.automation.as_ref());
        for (name, value) in automation.headers.iter_mut() {
            if value != MASK {
                continue;
            }
            if let Some(stored) = stored
                && stored.url != automation.url
            {
                return Err(CatalogueError::new(
                    format!("runbooks[{i}].automation.headers.{name}"),
                    format!(
                        "the automation URL changed (from {} to {}): a stored secret never \
                         follows a changed URL; send the value of {name:?} again",
                        stored.url, automation.url
                    ),
                ));
            }
            match stored.and_then(|a| a.headers.get(name)) {
                Some(kept) => {
                    value.clone_from(kept);
                    kept_headers
                        .entry(id.clone())
                        .or_insert_with(Vec::new)
                        .push(name.clone());
                }
                None => {
                    return Err(CatalogueError::new(
                        format!("runbooks[{i}].automation.headers.{name}"),
                        format!(
                            "{MASK} keeps the stored value, but runbook {id:?} has no stored \
                             header {name:?}; send the value itself"
                        ),
                    ));
                }
            }
        }
    }
    Ok(kept_headers)
}

/// Where a header value belongs: the associated data it is sealed with.
fn place(runbook: &str, header: &str) -> String {
    format!("runbook {runbook:?}, header {header:?}")
}

/// The catalogue as stored: every header value sealed.
pub(super) fn sealed(catalogue: &Catalogue, sealer: &Sealer) -> Result<Catalogue, SealError> {
    let mut stored = catalogue.clone();
    each_header(&mut stored, |runbook, name, value| {
        *value = sealer.seal(value, &place(runbook, name))?;
        Ok(())
    })?;
    Ok(stored)
}

/// A stored catalogue with the header values it held in plain text (stored before secrets
/// were sealed) sealed and those already sealed left as they are; `None` if none was plain.
pub(super) fn sealed_plain(
    catalogue: &Catalogue,
    sealer: &Sealer,
) -> Result<Option<Catalogue>, SealError> {
    let mut stored = catalogue.clone();
    let mut plain = false;
    each_header(&mut stored, |runbook, name, value| {
        if !is_sealed(value) {
            *value = sealer.seal(value, &place(runbook, name))?;
            plain = true;
        }
        Ok(())
    })?;
    Ok(plain.then_some(stored))
}

/// Why a stored catalogue cannot be put back in force.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpenError {
    /// This build (or the allow-list) refuses it.
    #[error(transparent)]
    Invalid(#[from] CatalogueError),
    /// Its secrets do not open.
    #[error(transparent)]
    Sealing(#[from] SealError),
}

/// A stored catalogue's text, checked against the allow-list, with its header values opened
/// (a value stored in plain text before secrets were sealed is taken as it is).
pub(super) fn opened(
    text: &str,
    allowed_hosts: &[String],
    sealer: &Sealer,
) -> Result<Catalogue, OpenError> {
    let mut catalogue = checked_catalogue(text, allowed_hosts)?;
    each_header(&mut catalogue, |runbook, name, value| {
        if is_sealed(value) {
            *value = sealer.open(value, &place(runbook, name))?;
        }
        Ok::<_, SealError>(())
    })?;
    Ok(catalogue)
}
