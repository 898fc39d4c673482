/**
 * The version of Flotilla's application protocol: the topics, the payload
 * schemas and what each side does with them, on top of MQTT 3.1.1 (whose own
 * protocol level, 4, says nothing about these).
 *
 * The agent states the version it speaks in its MQTT will (the `protocol`
 * field of the offline status it leaves with the broker): the will travels in
 * every CONNECT, so the hub reads the statement before it admits the
 * connection, with no extra round trip and on every way an agent can connect
 * (password, client certificate, anonymous). A hub refuses a version it does
 * not speak with CONNACK return code 1, "unacceptable protocol version"
 * (MQTT 3.1.1 §3.2.2.3): an agent always asks for MQTT level 4, which every
 * 3.1.1 broker accepts, so from a Flotilla hub that code can only mean this
 * protocol (broker/mqtt/protocol-gate.ts; the agent's side is agent/link.ts).
 *
 * Bump PROTOCOL_VERSIONS' newest entry when a change means a hub and an agent
 * of different releases would misunderstand each other, and keep the older
 * entries for as long as the hub still serves agents that speak them.
 */

/** Every version this hub speaks, oldest first; the agent speaks the newest. */
export const PROTOCOL_VERSIONS: readonly number[] = [1];

/** What this agent states in its will. */
export const AGENT_PROTOCOL_VERSION: number = Math.max(...PROTOCOL_VERSIONS);

/** An agent that states no version predates the statement, and spoke what is now version 1. */
export const UNSTATED_PROTOCOL_VERSION = 1;

/** MQTT 3.1.1 CONNACK return code 1: how a hub refuses an agent whose protocol version it does not speak. */
export const CONNACK_UNACCEPTABLE_PROTOCOL = 1;
