export * from './app-spec.js';
export * from './canonical-json.js';
export * from './ids.js';
export * from './schemas/messages.js';
export * from './schemas/spec.js';
export * from './schemas/units.js';
export * from './topics.js';
export * from './validate.js';
