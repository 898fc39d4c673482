/**
 * The web console. Preact: React's component model in 4 KB, so the page
 * stays small enough for a plant network and renders a thousand rows without
 * a framework's overhead; charts are uPlot (made for time series: 40 KB and
 * fast with many points), the terminal xterm.js; both load only on the views
 * that use them.
 */
import { render } from 'preact';
// Every stylesheet is imported here, from the first chunk: esbuild writes the CSS
// of a lazily loaded chunk to a file of its own that nothing would load.
import 'uplot/dist/uPlot.min.css';
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { App } from './app.js';

render(<App />, document.getElementById('app')!);
