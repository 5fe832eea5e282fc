// The API docs page: Swagger UI (from the swagger-ui-bundle-v2 package, served by the app itself: no CDN)
// rendering the app's own OpenAPI description. Relative to /api/docs, "openapi.json" is /api/openapi.json.
window.addEventListener("DOMContentLoaded", () => {
  window.ui = window.SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
