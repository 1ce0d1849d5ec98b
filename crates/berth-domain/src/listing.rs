//! Paging, ordering and filtering of lists. Stores apply all of it in the database, so totals
//! and pages are right at any size.

use time::OffsetDateTime;

use crate::credential::Scope;
use crate::ids::{AppGuid, CredentialGuid, OrganizationGuid, SpaceGuid};
use crate::label_selector::LabelSelector;
use crate::permissions::{CredentialVisibility, DirectoryVisibility};

/// The page size when none is asked for.
pub const DEFAULT_PER_PAGE: u32 = 50;
/// The largest page size.
pub const MAX_PER_PAGE: u32 = 5000;
/// The largest page number.
pub const MAX_PAGE: u32 = i32::MAX as u32;

/// Most values each comma-separated list filter of a list query may hold (`guids`,
/// `organization_guids`, `space_guids`, `app_guids`, `scopes`, `locations`, `names`,
/// `created_ats`, `updated_ats`). About what a Cloud Foundry request line can carry anyway
/// (200 guids are 7.4 KB), and small enough that every filter at its bound at once, with a full
/// label selector ([`crate::label_selector::MAX_REQUIREMENTS`] requirements of
/// [`crate::label_selector::MAX_LIST_VALUES`] values each), stays far under the bound values
/// a statement may carry (SQLite 32766, PostgreSQL 65535): the stores check their worst case
/// against it when they compile.
pub const MAX_LIST_FILTER_VALUES: usize = 200;

/// Why a page request was refused; `Display` is Cloud Foundry's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    /// Page must be a positive integer.
    #[error("Page must be a positive integer")]
    Page,
    /// Per page must be a positive integer.
    #[error("Per page must be a positive integer")]
    PerPageNotPositive,
    /// Per page must be between 1 and ….
    #[error("Per page must be between 1 and {MAX_PER_PAGE}")]
    PerPageTooLarge,
}

/// A page number (from 1) and a page size (1 to 5000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageRequest {
    page: u32,
    per_page: u32,
}

impl<T> Page<T> {
    /// One page of results, and the number of results over all pages.
    pub fn new(items: Vec<T>, total_results: u64) -> Self {
        Self {
            items,
            total_results,
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl PageRequest {
    /// # Errors
    /// A [`PageError`] when either number is out of range.
    pub fn new(page: u64, per_page: u64) -> Result<Self, PageError> {
        // Pages stop at i32::MAX: the largest value every client and the API description share.
        let page = u32::try_from(page)
            .ok()
            .filter(|p| (1..=MAX_PAGE).contains(p))
            .ok_or(PageError::Page)?;
        if per_page == 0 {
            return Err(PageError::PerPageNotPositive);
        }
        let per_page = u32::try_from(per_page)
            .ok()
            .filter(|p| *p <= MAX_PER_PAGE)
            .ok_or(PageError::PerPageTooLarge)?;
        Ok(Self { page, per_page })
    }

    /// The page number, from 1.
    pub fn page(&self) -> u32 {
        self.page
    }

    /// The page size.
    pub fn per_page(&self) -> u32 {
        self.per_page
    }

    /// Rows to skip before this page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.per_page)
    }

    /// Pages needed for `total` results: at least one, so an empty list still has page 1.
    pub fn total_pages(&self, total: u64) -> u64 {
        total.div_ceil(u64::from(self.per_page)).max(1)
    }
}

/// One page of results and the number of results over all pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The results on this page.
    pub items: Vec<T>,
    /// The number of results over all pages.
    pub total_results: u64,
}

/// Which way a list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Ascending.
    #[default]
    Ascending,
    /// Descending.
    Descending,
}

/// A sort field and direction; ties are always broken by guid so pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordering<F> {
    /// The field ordered by.
    pub field: F,
    /// Ascending or descending.
    pub direction: Direction,
}

/// What credentials can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CredentialOrderField {
    /// Created at.
    #[default]
    CreatedAt,
    /// Updated at.
    UpdatedAt,
    /// Location.
    Location,
}

/// What organizations, spaces and apps can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectoryOrderField {
    /// Created at.
    #[default]
    CreatedAt,
    /// Updated at.
    UpdatedAt,
    /// Name.
    Name,
}

/// A filter on a timestamp: any of the listed seconds, and every relational bound.
///
/// Timestamps have second precision, so `equals` matches anything within that second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimestampFilter {
    /// Any of these instants (to the second).
    pub equals: Vec<OffsetDateTime>,
    /// Before this instant.
    pub lt: Option<OffsetDateTime>,
    /// At or before this instant.
    pub lte: Option<OffsetDateTime>,
    /// After this instant.
    pub gt: Option<OffsetDateTime>,
    /// At or after this instant.
    pub gte: Option<OffsetDateTime>,
}

impl TimestampFilter {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.equals.is_empty()
            && self.lt.is_none()
            && self.lte.is_none()
            && self.gt.is_none()
            && self.gte.is_none()
    }
}

/// A list request for registry credentials. `None` means "no filter"; an empty list matches nothing.
/// The use case sets `visibility` from the caller's permissions; its default shows only
/// foundation credentials, so a forgotten visibility never shows too much.
#[derive(Debug, Clone, Default)]
pub struct CredentialQuery {
    /// What the caller may see, from its permissions.
    pub visibility: CredentialVisibility,
    /// Only these guids.
    pub guids: Option<Vec<CredentialGuid>>,
    /// Only credentials of these organizations.
    pub organization_guids: Option<Vec<OrganizationGuid>>,
    /// Only credentials of these spaces.
    pub space_guids: Option<Vec<SpaceGuid>>,
    /// Only credentials of these apps.
    pub app_guids: Option<Vec<AppGuid>>,
    /// Only credentials of these scopes.
    pub scopes: Option<Vec<Scope>>,
    /// Locations as stored (host lowercased).
    pub locations: Option<Vec<String>>,
    /// Only credentials whose labels match.
    pub label_selector: Option<LabelSelector>,
    /// A filter on the creation time.
    pub created_ats: TimestampFilter,
    /// A filter on the time of the last change.
    pub updated_ats: TimestampFilter,
    /// The order; creation time, ascending, when `None`.
    pub order: Option<Ordering<CredentialOrderField>>,
    /// The page asked for.
    pub page: PageRequest,
}

/// A list request for organizations, spaces or apps; `visibility` as in [`CredentialQuery`].
#[derive(Debug, Clone, Default)]
pub struct DirectoryQuery {
    /// What the caller may see, from its permissions.
    pub visibility: DirectoryVisibility,
    /// Guids as given; guids that are not UUIDs simply match nothing.
    pub guids: Option<Vec<uuid::Uuid>>,
    /// Only entries of these names.
    pub names: Option<Vec<String>>,
    /// Parent guids: organizations for spaces, spaces for apps.
    pub parent_guids: Option<Vec<uuid::Uuid>>,
    /// The order; creation time, ascending, when `None`.
    pub order: Option<Ordering<DirectoryOrderField>>,
    /// The page asked for.
    pub page: PageRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_bounds_follow_cloud_foundry() {
        assert_eq!(PageRequest::new(0, 50), Err(PageError::Page));
        assert_eq!(PageRequest::new(1, 0), Err(PageError::PerPageNotPositive));
        assert_eq!(PageRequest::new(1, 5001), Err(PageError::PerPageTooLarge));
        assert_eq!(PageRequest::new(u64::MAX, 50), Err(PageError::Page));
        assert_eq!(PageRequest::new(2_147_483_648, 50), Err(PageError::Page));
        assert!(PageRequest::new(2_147_483_647, 50).is_ok());
        let page = PageRequest::new(3, 5000).unwrap();
        assert_eq!(page.offset(), 10_000);
        assert_eq!(page.total_pages(0), 1);
        assert_eq!(page.total_pages(5000), 1);
        assert_eq!(page.total_pages(5001), 2);
    }
}
