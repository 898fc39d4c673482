/**
 * `GET /api/v1/devices?follow=true`: the fleet as Server-Sent Events, for the
 * web console's fleet page. Event `fleet` carries every device first, then
 * `fleet-changes` what changed (at most one a tick, feed.ts); `: ping`
 * comments keep idle connections open. Same path and role as `devices.list`.
 *
 * `watching` is told a stream opens before its snapshot is taken, and
 * returns what to call when it ends: a hub replica hears other replicas'
 * metrics samples meanwhile (broker/hub/telemetry-follow.ts).
 */
import { API, FLEET_EVENT, type FleetChanges, type FleetSnapshot } from '../../shared/index.js';
import { isFollow, openEventStream, type SendEvents } from '../http/event-stream.js';
import { methodRoute } from '../http/routes.js';
import type { RawRoute } from '../http/server.js';
import type { FleetFeed } from './feed.js';

const LIST = methodRoute('devices.list');

export function fleetFollowRoute(feed: FleetFeed, watching?: () => Promise<() => void>): RawRoute {
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
      const unwatch = await watching?.();
      let following: Awaited<ReturnType<FleetFeed['follow']>>;
      try {
        following = await feed.follow((changes) => (send ? send(toEvents([changes])) : early.push(changes)));
      } catch (err) {
        unwatch?.();
        throw err;
      }
      const { snapshot } = following;
      const stop = () => {
        following.stop();
        unwatch?.();
      };
      // The client left while the watch or the snapshot was awaited: its close has been and gone.
      if (res.destroyed) return stop();
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
