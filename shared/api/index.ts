export * from './access.js';
export * from './declare.js';
export * from './methods.js';
export * from './results.js';
