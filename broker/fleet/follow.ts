/**
 * `GET /api/v1/devices?follow=true`: the fleet as Server-Sent Events, for the
 * web console's fleet page. Event `fleet` carries every device first, then
 * `fleet-changes` what changed (at most one a tick, feed.ts); `: ping`
 * comments keep idle connections open. Same path and role as `devices.list`.
 */
import { API, FLEET_EVENT, type FleetChanges, type FleetSnapshot } from '../../shared/index.js';
import { isFollow, openEventStream, type SendEvents } from '../http/event-stream.js';
import { methodRoute } from '../http/routes.js';
import type { RawRoute } from '../http/server.js';
import type { FleetFeed } from './feed.js';

const LIST = methodRoute('devices.list');

export function fleetFollowRoute(feed: FleetFeed): RawRoute {
  return {
    method: LIST.verb,
    pattern: LIST.pattern,
    accepts: isFollow,
    role: API['devices.list'].role,
    async handle(req, res) {
      // Changes that come before the stream is open wait here, behind the snapshot.
      const early: FleetChanges[] = [];
      let send: SendEvents | undefined;
      const toEvents = (changes: readonly FleetChanges[]) => changes.map((data) => ({ event: FLEET_EVENT.changes, data }));
      const { snapshot, stop } = await feed.follow((changes) => (send ? send(toEvents([changes])) : early.push(changes)));
      const first: FleetSnapshot = { items: snapshot };
      openEventStream(
        req,
        res,
        (sendEvents) => {
          send = sendEvents;
          return { first: [{ event: FLEET_EVENT.all, data: first }, ...toEvents(early)], stop };
        },
        'follower too slow; reconnect for the whole fleet',
      );
    },
  };
}
