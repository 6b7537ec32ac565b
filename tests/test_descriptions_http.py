"""The description client against a real HTTP server on 127.0.0.1 that plays an OpenAI-compatible API.

Every failure mode the client must survive is scripted here: malformed answers, too few sentences,
rate limits with Retry-After, server errors, timeouts, dropped connections, and a crash mid-run
followed by a resume that asks only for the classes still missing. `sleep` is injected, so nothing
actually waits (the timeout test waits 50 ms).
"""
import json, re, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from msta_core.descriptions import DescriptionError, description_prompt
from msta_core.llm import ChatClient, generate_descriptions


class FakeChatAPI:
    """`POST /v1/chat/completions` on 127.0.0.1:<free port>. `behaviour(i, cls, kind)` picks each reply:
    ('ok',) two good sentences, ('content', text) a given answer text, ('status', code, headers),
    ('body', bytes) a raw 200 body, ('drop',) close the socket without answering, ('slow', seconds),
    ('message', obj) a reply whose `content` is `obj` (None, a list of parts...), ('trickle', seconds) the whole
    response (status line, headers, a good body) one byte every `seconds`."""

    def __init__(self, behaviour=lambda i, cls, kind: ('ok',)):
        self.behaviour, self.requests = behaviour, []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                prompt = body['messages'][0]['content']
                cls = re.search(r'of the action (.+?)\. Answer', prompt).group(1)
                kind = 'spatial' if 'visual appearance' in prompt else 'temporal'
                api.requests.append({'path': self.path, 'auth': self.headers.get('Authorization'),
                                     'model': body['model'], 'prompt': prompt, 'cls': cls, 'kind': kind})
                action = api.behaviour(len(api.requests) - 1, cls, kind)
                if action[0] == 'drop':
                    self.close_connection = True
                    return
                if action[0] == 'slow':
                    time.sleep(action[1])
                if action[0] == 'status':
                    self.send_response(action[1])
                    for k, v in action[2].items(): self.send_header(k, v)
                    self.send_header('Content-Length', '0'); self.end_headers()
                    return
                if action[0] == 'trickle':
                    data = json.dumps({'choices': [{'message': {'content': json.dumps([f'{cls} one.', f'{cls} two.'])}}]})
                    raw = (f'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n'
                           + data).encode()
                    self.close_connection = True
                    try:
                        for b in raw: self.wfile.write(bytes([b])); self.wfile.flush(); time.sleep(action[1])
                    except OSError: pass                     # the client hung up
                    return
                if action[0] == 'body':
                    data = action[1]
                elif action[0] == 'message':
                    data = json.dumps({'choices': [{'message': {'role': 'assistant', 'content': action[1]},
                                                    'finish_reason': 'stop'}]}).encode()
                else:
                    content = action[1] if action[0] == 'content' else json.dumps(
                        [f'{cls} {kind} one.', f'{cls} {kind} two.'])
                    data = json.dumps({'choices': [{'message': {'role': 'assistant', 'content': content}}]}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data))); self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args): pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads, self.server.block_on_close = True, False
        self.url = f'http://127.0.0.1:{self.server.server_port}/v1'
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown(); self.server.server_close()


@pytest.fixture
def api():
    a = FakeChatAPI()
    yield a
    a.close()


def client_for(api, **kw):
    waits = []
    kw = {'model': 'fake-chat', 'api_key': 'secret', 'backoff': 0.5, 'max_retries': 3, 'sleep': waits.append, **kw}
    return ChatClient(base_url=api.url, **kw), waits


CLASSES = ['archery', 'bowling', 'cliff diving', 'dribbling', 'eating']


def test_good_answers_and_request_shape(api, tmp_path):
    client, waits = client_for(api)
    d = generate_descriptions(CLASSES[:3], tmp_path / 'c.json', n=2, client=client)
    assert d.source == 'llm' and d.class_names == CLASSES[:3]
    assert d.spatial[2] == ['cliff diving spatial one.', 'cliff diving spatial two.']
    assert d.temporal[0] == ['archery temporal one.', 'archery temporal two.']
    assert waits == [] and len(api.requests) == 6
    r = api.requests[0]
    assert r['path'] == '/v1/chat/completions' and r['auth'] == 'Bearer secret' and r['model'] == 'fake-chat'
    assert [q['prompt'] for q in api.requests[:2]] == [description_prompt('spatial', 'archery', 2),
                                                        description_prompt('temporal', 'archery', 2)]
    cache = json.loads((tmp_path / 'c.json').read_text())
    assert list(cache['classes']) == CLASSES[:3] and cache['n'] == 2 and cache['model'] == 'fake-chat'
    # everything cached: a second run sends nothing
    again = generate_descriptions(CLASSES[:3], tmp_path / 'c.json', n=2, client=client)
    assert again == d and len(api.requests) == 6


def test_settings_from_environment(api, tmp_path, monkeypatch):
    monkeypatch.setenv('MSTA_LLM_BASE_URL', api.url)
    monkeypatch.setenv('MSTA_LLM_MODEL', 'env-model')
    monkeypatch.delenv('MSTA_LLM_API_KEY', raising=False)
    monkeypatch.setenv('DEEPSEEK_API_KEY', 'ds-key')
    client = ChatClient(sleep=lambda s: None)
    assert client.base_url == api.url and client.model == 'env-model'
    generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert {(r['auth'], r['model']) for r in api.requests} == {('Bearer ds-key', 'env-model')}
    monkeypatch.setenv('MSTA_LLM_API_KEY', 'msta-key')
    assert ChatClient().api_key == 'msta-key' and 'msta-key' not in repr(ChatClient())


def test_malformed_json_is_retried(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('content', 'Sure! Here are two: ["a bow", ') if i == 0 else ('ok',)
    client, waits = client_for(api)
    d = generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert d.spatial[0] == ['archery spatial one.', 'archery spatial two.']
    assert len(api.requests) == 3 and waits == [0.5]


def test_fenced_numbered_answer_is_cleaned(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('content', '```json\n["1. \\"A drawn bow.\\"", "2)  An   arrow flies. "]\n```')
    client, waits = client_for(api)
    d = generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert d.spatial[0] == d.temporal[0] == ['A drawn bow.', 'An arrow flies.'] and waits == []


def test_not_a_chat_response_is_retried(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('body', b'{"error": "overloaded"}') if i == 0 else ('ok',)
    client, waits = client_for(api)
    generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert len(api.requests) == 3 and waits == [0.5]


def test_too_few_sentences_gives_up_with_clear_error(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('content', '["just one sentence."]')
    client, waits = client_for(api, max_retries=3, backoff=0.5, max_backoff=1.5)
    with pytest.raises(DescriptionError, match=r'gave up after 4 attempts.*expected 2 sentences, got 1'):
        generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert len(api.requests) == 4
    assert waits == [0.5, 1.0, 1.5]             # exponential back-off, capped at max_backoff
    assert not (tmp_path / 'c.json').exists()   # nothing finished, nothing written


def test_rate_limit_honours_retry_after(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('status', 429, {'Retry-After': '7'}) if i == 0 else ('ok',)
    client, waits = client_for(api)
    d = generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert waits == [7.0] and len(api.requests) == 3 and len(d.spatial[0]) == 2


def test_server_errors_back_off_exponentially(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('status', 503, {}) if i < 2 else ('ok',)
    client, waits = client_for(api)
    generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert waits == [0.5, 1.0] and len(api.requests) == 4


def test_wrong_key_fails_at_once(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('status', 401, {})
    client, waits = client_for(api)
    with pytest.raises(DescriptionError, match='HTTP 401.*MSTA_LLM_API_KEY'):
        generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert len(api.requests) == 1 and waits == []


def test_timeout_is_retried(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('slow', 0.5) if i == 0 else ('ok',)
    client, waits = client_for(api, timeout=0.05)
    d = generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert waits == [0.5] and d.spatial[0] == ['archery spatial one.', 'archery spatial two.']


def test_dropped_connection_is_retried(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('drop',) if i == 1 else ('ok',)
    client, waits = client_for(api)
    d = generate_descriptions(['archery', 'bowling'], tmp_path / 'c.json', client=client)
    assert len(api.requests) == 5 and waits == [0.5] and d.temporal[0] == ['archery temporal one.', 'archery temporal two.']


def test_crash_mid_run_then_resume_asks_only_for_the_rest(api, tmp_path):
    cache = tmp_path / 'c.json'
    # run 1: the connection drops on every request about the third class
    api.behaviour = lambda i, cls, kind: ('drop',) if cls == CLASSES[2] else ('ok',)
    client, waits = client_for(api, max_retries=2)
    with pytest.raises(DescriptionError, match='gave up after 3 attempts'):
        generate_descriptions(CLASSES, cache, client=client)
    assert len(api.requests) == 2 + 2 + 3      # classes 1-2 (s + t each), then 3 tries on class 3
    kept = json.loads(cache.read_text())
    assert list(kept['classes']) == CLASSES[:2]
    assert [p.name for p in tmp_path.iterdir()] == ['c.json']    # no temp files left behind
    # run 2: the network is back; only classes 3-5 are asked for
    api.behaviour, api.requests = (lambda i, cls, kind: ('ok',)), []
    d = generate_descriptions(CLASSES, cache, client=client)
    assert [r['cls'] for r in api.requests] == [c for c in CLASSES[2:] for _ in range(2)]
    assert d.class_names == CLASSES and [s[0] for s in d.spatial] == [f'{c} spatial one.' for c in CLASSES]
    assert list(json.loads(cache.read_text())['classes']) == CLASSES


def test_cache_with_other_settings_or_corrupt_is_refused(api, tmp_path):
    client, _ = client_for(api)
    generate_descriptions(['archery'], tmp_path / 'c.json', n=2, client=client)
    with pytest.raises(DescriptionError, match="'n': 2.*'n': 4"):
        generate_descriptions(['archery'], tmp_path / 'c.json', n=4, client=client)
    (tmp_path / 'bad.json').write_text('{"format": "msta.descri')
    with pytest.raises(DescriptionError, match='bad.json is not valid JSON'):
        generate_descriptions(['archery'], tmp_path / 'bad.json', client=client)


def test_timeout_bounds_the_whole_request(api, tmp_path):
    "A server that trickles a byte every 0.2 s never trips a per-read timeout; `timeout` bounds the whole request."
    api.behaviour = lambda i, cls, kind: ('trickle', 0.2) if i == 0 else ('ok',)
    client, waits = client_for(api, timeout=1.0)
    t0 = time.monotonic()
    d = generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert time.monotonic() - t0 < 4          # the trickle alone would take over 30 s
    assert waits == [0.5] and len(api.requests) == 3 and d.spatial[0] == ['archery spatial one.', 'archery spatial two.']


def test_trickle_that_never_ends_gives_a_timeout_error(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('trickle', 0.2)
    client, waits = client_for(api, timeout=0.6, max_retries=1)
    t0 = time.monotonic()
    with pytest.raises(DescriptionError, match=r"class 'archery'.*no complete answer .* within timeout=0.6s"):
        generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert time.monotonic() - t0 < 4 and len(api.requests) == 2


def test_reply_without_text_is_retried(api, tmp_path):
    "`content: null` (a cut or filtered reply) is retried like a malformed answer, not a TypeError."
    api.behaviour = lambda i, cls, kind: ('message', None) if i == 0 else ('ok',)
    client, waits = client_for(api)
    d = generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert waits == [0.5] and len(api.requests) == 3 and len(d.spatial[0]) == 2


def test_content_parts_are_read_as_text(api, tmp_path):
    parts = [{'type': 'text', 'text': '["A drawn bow.", '}, {'type': 'text', 'text': '"An arrow flies."]'}]
    api.behaviour = lambda i, cls, kind: ('message', parts)
    client, waits = client_for(api)
    d = generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    assert d.spatial[0] == ['A drawn bow.', 'An arrow flies.'] and waits == []


def test_replies_that_never_hold_text_name_the_class(api, tmp_path):
    api.behaviour = lambda i, cls, kind: ('message', None if cls == 'bowling' else [{'type': 'image_url', 'image_url': {}}])
    client, waits = client_for(api, max_retries=1)
    with pytest.raises(DescriptionError, match=r"class 'archery'.*gave up after 2 attempts.*holds no text \(content: a list of 1 parts"):
        generate_descriptions(['archery'], tmp_path / 'c.json', client=client)
    with pytest.raises(DescriptionError, match=r"class 'bowling'.*holds no text \(content: null, finish_reason 'stop'"):
        generate_descriptions(['bowling'], tmp_path / 'd.json', client=client)


def test_cached_class_with_too_few_sentences_is_asked_again(api, tmp_path):
    cache = tmp_path / 'c.json'
    client, _ = client_for(api)
    generate_descriptions(['archery', 'bowling'], cache, client=client)
    kept = json.loads(cache.read_text())
    kept['classes']['bowling']['temporal'] = ['only one sentence.']          # edited by hand, or another tool
    cache.write_text(json.dumps(kept))
    api.requests = []
    with pytest.warns(UserWarning, match=r"1 cached class\(es\) without 2 spatial and 2 temporal.*bowling"):
        d = generate_descriptions(['archery', 'bowling'], cache, client=client)
    assert [r['cls'] for r in api.requests] == ['bowling', 'bowling']
    assert d.temporal[1] == ['bowling temporal one.', 'bowling temporal two.']
    assert json.loads(cache.read_text())['classes']['bowling']['temporal'] == d.temporal[1]
