// What the client-flow tests share: the weather tool's arguments and answer, and an Agents SDK agent that
// calls it, pointed at llmux (the Agents SDK's API mode is the caller's: setOpenAIAPI).
import { z } from 'zod';
import OpenAI from 'openai';
import { Agent, tool as agentTool, setDefaultOpenAIClient, setTracingDisabled } from '@openai/agents';

export const weatherArgs = z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']) });
export const weatherOf = ({ city, unit }) => ({ city, unit, temperature: 21 });

// An agent (on mock/echo unless told) with one function tool, get_weather; each call's arguments go to
// `calls`.
export function forecaster(baseURL, calls, model = 'mock/echo') {
  setDefaultOpenAIClient(new OpenAI({ baseURL, apiKey: 'unused' }));
  setTracingDisabled(true);
  return new Agent({
    name: 'Forecaster',
    instructions: 'Answer weather questions with the tool.',
    model,
    tools: [agentTool({ name: 'get_weather', description: 'Weather for a city', parameters: weatherArgs,
      execute: async (a) => { calls.push(a); return JSON.stringify(weatherOf(a)); } })],
  });
}
