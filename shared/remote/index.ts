export * from './flow.js';
export * from './frames.js';
export * from './node-bytes.js';
export * from './requests.js';
export * from './websocket.js';
