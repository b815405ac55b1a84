// Starts Swagger UI (swagger-ui-dist from npm) on the OpenAPI document; an external file, as the CSP allows no
// inline script.
const root = document.getElementById('swagger-ui');
window.SwaggerUIBundle({
  url: root.dataset.url,
  domNode: root,
  deepLinking: true,
  defaultModelsExpandDepth: 1,
  docExpansion: 'list',
  validatorUrl: null,
});
