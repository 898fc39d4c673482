/** `flotilla rollout history`'s table: what its IMAGES column says for an app whose containers share images. */
import { describe, expect, it } from 'vitest';
import type { AppHistory } from '../../cli/client.js';
import { historyTable } from '../../cli/commands/rollout.js';

const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

describe('historyTable IMAGES', () => {
  it('names each image once, in the order the containers first use it', () => {
    const history: AppHistory = {
      name: 'shop',
      current: 2,
      items: [
        {
          revision: 2,
          createdAt: ago(10),
          specHash: 'h2',
          current: true,
          cause: 'apply',
          images: ['reg/shop:2', 'postgres:16', 'reg/shop:2', 'postgres:16', 'reg/shop:2'],
        },
        { revision: 1, createdAt: ago(60), specHash: 'h1', current: false, cause: 'apply', images: ['reg/bb:1', 'reg/bb:1', 'reg/bb:1'] },
      ],
    };
    expect(historyTable(history, NOW)).toBe(
      [
        'REVISION   CREATED   IMAGES                   CAUSE   SOURCE',
        '2*         10s       reg/shop:2,postgres:16   apply   <none>',
        '1          1m        reg/bb:1                 apply   <none>',
        '',
      ].join('\n'),
    );
  });
});
