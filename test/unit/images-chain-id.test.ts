/**
 * Chain IDs as the Docker Engine computes them, and the DiffIDs an image
 * config names. The expected chains were read from a Docker 20.10 engine:
 * the three-layer busybox test image's RootFS.Layers (`docker image inspect`)
 * and the directories /var/lib/docker/image/overlay2/layerdb/sha256/<chain>
 * it kept for them, each holding that layer's DiffID in its `diff` file.
 * test/e2e/image-load.test.ts checks the same against the live engine.
 */
import { describe, expect, it } from 'vitest';
import { chainIds, configDiffIds } from '../../agent/images/chain-id.js';
import { FetchError } from '../../agent/images/types.js';

const DIFF_IDS = [
  'sha256:8386d56a55ad942a2537e10ba28321ca37c2178fd8446d6c479f73f161ae0de3',
  'sha256:53cab617ce95349d6b11b531de5e27a34ccf384c583c9470a9b546aaff5c6977',
  'sha256:73332500ec67c9b43b8bb757203ef2905fd2548e9cf45c7ba5a3415d79f89f1a',
];

/** The engine's layerdb entries for DIFF_IDS, base first. */
const ENGINE_CHAINS = [
  'sha256:8386d56a55ad942a2537e10ba28321ca37c2178fd8446d6c479f73f161ae0de3',
  'sha256:28c8131958c1fcd893290b87b8f10e653fc34ef4a3432cdb67c907fd0d105737',
  'sha256:377881ddeab02e4c0289d8bdb28f201477184b9e48b8a78cc8131e86aa1ef019',
];

function refusal(fn: () => unknown): FetchError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FetchError);
    return err as FetchError;
  }
  throw new Error('expected a FetchError');
}

describe('chainIds', () => {
  it('are the chains the engine keeps for an image it holds', () => {
    expect(chainIds(DIFF_IDS)).toEqual(ENGINE_CHAINS);
  });

  it('key a layer by the stack below it: the same tar on another base is another chain', () => {
    const [base, middle, top] = DIFF_IDS as [string, string, string];
    const onOtherBase = chainIds([middle, top]);
    expect(onOtherBase[0]).toBe(middle);
    expect(onOtherBase[1]).not.toBe(ENGINE_CHAINS[2]);
    // A prefix's chains do not depend on what is stacked on it later.
    expect(chainIds([base, middle])).toEqual(ENGINE_CHAINS.slice(0, 2));
  });

  it('are none for an image without layers', () => {
    expect(chainIds([])).toEqual([]);
  });
});

describe('configDiffIds', () => {
  const config = (rootfs: unknown) => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs }));

  it("reads a config's rootfs.diff_ids, base first", () => {
    expect(configDiffIds('web:1', config({ type: 'layers', diff_ids: DIFF_IDS }))).toEqual(DIFF_IDS);
  });

  it('refuses a config that is not JSON, naming the image', () => {
    const err = refusal(() => configDiffIds('reg/web:1', Buffer.from('{"rootfs":')));
    expect(err.code).toBe('bad_response');
    expect(err.image).toBe('reg/web:1');
    expect(err.message).toMatch(/image config of reg\/web:1 is not JSON/);
  });

  it('refuses a config without a layered rootfs', () => {
    expect(refusal(() => configDiffIds('web:1', config({ type: 'other', diff_ids: DIFF_IDS }))).code).toBe('bad_response');
    expect(refusal(() => configDiffIds('web:1', config(undefined))).message).toMatch(/no rootfs of type "layers"/);
  });

  it('refuses a layer digest that is not sha256, quoting it', () => {
    const err = refusal(() => configDiffIds('web:1', config({ type: 'layers', diff_ids: [DIFF_IDS[0], 'sha512:abc'] })));
    expect(err.code).toBe('bad_response');
    expect(err.message).toContain('"sha512:abc"');
  });
});
