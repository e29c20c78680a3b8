//! The route registry: every route is registered with the access rule of each of its methods,
//! so the router and the authorization table cannot drift apart, and tests can enumerate them.

use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;

use crate::auth::Access;
use crate::AppState;

/// One method of one route and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct RouteRule {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

/// Routes under construction.
#[derive(Default)]
pub struct Api {
    pub(crate) router: Router<AppState>,
    pub(crate) rules: Vec<RouteRule>,
}

impl Api {
    pub fn new() -> Api {
        Api::default()
    }

    /// Adds a route with its handlers and one access rule per method it answers.
    pub fn route(
        mut self,
        path: &'static str,
        handlers: MethodRouter<AppState>,
        rules: &[(Method, Access)],
    ) -> Api {
        assert!(
            !rules.is_empty(),
            "route {path} registered without access rules"
        );
        for (method, access) in rules {
            let method = match *method {
                Method::GET => "GET",
                Method::POST => "POST",
                Method::PUT => "PUT",
                Method::DELETE => "DELETE",
                Method::PATCH => "PATCH",
                _ => panic!("route {path}: unsupported method {method}"),
            };
            self.rules.push(RouteRule {
                method,
                path,
                access: *access,
            });
        }
        self.router = self.router.route(path, handlers);
        self
    }

    pub fn merge(mut self, other: Api) -> Api {
        self.router = self.router.merge(other.router);
        self.rules.extend(other.rules);
        self
    }
}
