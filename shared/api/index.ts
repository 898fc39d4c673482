export * from './access.js';
export * from './declare.js';
export * from './fleet.js';
export * from './http-request.js';
export * from './methods.js';
export * from './results.js';
